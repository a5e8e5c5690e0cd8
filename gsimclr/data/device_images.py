"""A split of uint8 images that a stage indexes by batch on its device, resident or streamed.

Resident (the fast path where the split fits): the whole split lives on the device and a batch is one
index op. Streamed (a split larger than a quarter of the device's free memory, or `--stream on`): the
split stays in its host array, normally the `prepare` stage's memory map, and each batch is gathered
from it, pinned and copied to the device when it is needed; a background thread gathers the next
`ahead` batches of the epoch while the current one trains (as PyTorch's DataLoader prefetches), so the
memory a stage holds is the batches in flight, whatever the dataset's size. Both give the same batches
in the same order, bit for bit, so the choice never changes a result.

`images[idx]` is what the network sees: the central `size` x `size` crop of images stored larger
(`data.stored_size`); `images.stored(idx)` is the whole stored image, for the random-resized crops of
training, which resample a box of real pixels to `size`.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Optional, Union

import numpy as np
import torch

from gsimclr.method.augment import center_crop
from gsimclr.settings.names import Stream

Index = Union[int, slice, np.ndarray, torch.Tensor]
RESIDENT_SHARE = 0.25
"""`auto` keeps a split resident while it takes at most this share of the device's free memory
(the rest is for the network, its activations and the other split)."""


def free_memory(device: torch.device) -> int:
    """Bytes the device can still hold: free GPU memory, or the host's available RAM."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "mps":
        return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError):  # no sysconf (Windows): treat the host as roomy
        return 1 << 62


class _Split:
    """What both kinds share: length, the stored shape, and the network's view of a batch."""

    def __init__(self, host: torch.Tensor, size: Optional[int]) -> None:
        self.shape = host.shape
        self.size = size or int(host.shape[-1])

    def __len__(self) -> int:
        return int(self.shape[0])

    def stored(self, index: Index) -> torch.Tensor:
        """The images at `index` as stored, on the device."""
        raise NotImplementedError

    def __getitem__(self, index: Index) -> torch.Tensor:
        """The images at `index` as the network sees them: their central `size` x `size` crop."""
        return center_crop(self.stored(index), self.size)


class ResidentImages(_Split):
    """The whole split on the device (on the CPU: the host array itself, memory-mapped or not)."""

    def __init__(self, host: torch.Tensor, device: torch.device, size: Optional[int] = None) -> None:
        super().__init__(host, size)
        self.images = host.to(device)

    def stored(self, index: Index) -> torch.Tensor:
        return self.images[index]

    def read_ahead(self, batches: Sequence[np.ndarray]) -> None:
        """Nothing to read: every image is already on the device."""


class StreamedImages(_Split):
    """The split in host memory (or a memory map); each batch gathered, pinned and copied to the device
    on demand, the next `ahead` batches gathered by a background thread."""

    def __init__(self, host: torch.Tensor, device: torch.device, size: Optional[int] = None, ahead: int = 2) -> None:
        super().__init__(host, size)
        self.host, self.device, self.ahead = host, device, ahead
        self._pin = device.type == "cuda"
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gsimclr-read-ahead")
        self._pending: deque[np.ndarray] = deque()
        self._in_flight: deque[tuple[np.ndarray, Future[torch.Tensor]]] = deque()

    def _gather(self, index: Index) -> torch.Tensor:
        rows = self.host[torch.as_tensor(index) if isinstance(index, np.ndarray) else index]
        return rows.pin_memory() if self._pin else rows

    def _fill(self) -> None:
        while self._pending and len(self._in_flight) < self.ahead:
            index = self._pending.popleft()
            self._in_flight.append((index, self._reader.submit(self._gather, index)))

    def read_ahead(self, batches: Sequence[np.ndarray]) -> None:
        """Start gathering `batches` in this order (the epoch's batches, as the loop will index them);
        replaces what an earlier call left unread."""
        for _, future in self._in_flight:
            future.cancel()
        self._in_flight.clear()
        self._pending = deque(np.asarray(batch) for batch in batches)
        self._fill()

    def stored(self, index: Index) -> torch.Tensor:
        if isinstance(index, np.ndarray) and self._in_flight and np.array_equal(self._in_flight[0][0], index):
            rows = self._in_flight.popleft()[1].result()
            self._fill()
        else:  # not a batch read ahead (features, validation): gathered now
            rows = self._gather(index)
        return rows.to(self.device, non_blocking=self._pin)


DeviceImages = Union[ResidentImages, StreamedImages]


def device_images(
    host: torch.Tensor, device: torch.device, size: Optional[int] = None, stream: Stream = "auto"
) -> DeviceImages:
    """The split resident on the device where it fits (`auto`: at most `RESIDENT_SHARE` of the free
    memory) or where streaming is off, streamed otherwise; `size`: the network's input side."""
    fits = host.numel() * host.element_size() <= RESIDENT_SHARE * free_memory(device)
    if stream == "on" or (stream == "auto" and not fits):
        return StreamedImages(host, device, size)
    return ResidentImages(host, device, size)


def reading_ahead(
    images: DeviceImages,
    draw: Callable[[int], Sequence[np.ndarray]],
    rows: Callable[[np.ndarray], np.ndarray] = lambda batch: batch,
) -> Callable[[int], Sequence[np.ndarray]]:
    """Wrap an epoch's batch drawing so that `images` starts reading the epoch's batches (`rows` of each:
    the rows this process indexes, e.g. its data-parallel shard) as soon as they are drawn."""

    def batches(epoch: int) -> Sequence[np.ndarray]:
        drawn = draw(epoch)
        images.read_ahead([rows(batch) for batch in drawn])
        return drawn

    return batches
