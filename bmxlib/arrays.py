"""NumPy arrays as torch tensors: the one conversion that the metrics and the label
matrices share (``metrics.average_precision`` takes either kind of array; ``labels``
turns its NumPy inputs into tensors)."""

from __future__ import annotations

import numpy as np
import torch


def tensor_from_numpy(array: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` (shared memory) for any NumPy array torch can hold.

    Parameters
    ----------
    array : np.ndarray
        Any shape and any dtype torch has; a reversed view (negative strides) or a
        non-native byte order is copied first instead of refused with torch's message
        about strides or byte order.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and values; shares memory with ``array`` unless it was copied.
    """
    if not array.dtype.isnative or any(stride < 0 for stride in array.strides):
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    return torch.from_numpy(array)
