"""One lhotse batch as the tensors and texts a model step needs."""

from dataclasses import dataclass
from typing import Dict, List

import torch


@dataclass
class AsrBatch:
    """A ``K2SpeechRecognitionDataset`` batch in supervision order.

    Attributes:
        features: (N, T, F) float features, padded (or (N, S) waveforms for encoders that
            read audio).
        feature_lens: (N,) int64 valid frames (or samples) per utterance.
        texts: N transcripts.
        cut_ids: N cut ids (what error messages and bad-batch dumps name).
        durations: N durations in seconds.
    """

    features: torch.Tensor
    feature_lens: torch.Tensor
    texts: List[str]
    cut_ids: List[str]
    durations: List[float]


def unpack_batch(batch: Dict) -> AsrBatch:
    """The features of a lhotse batch reordered to its supervisions, with their lengths and texts.

    lhotse's dataset orders ``inputs`` by cut and ``supervisions`` by its own
    ``sequence_idx``; indexing the inputs by it pairs row ``i`` with supervision ``i``.
    """
    sup = batch["supervisions"]
    cuts = sup["cut"]
    return AsrBatch(
        features=batch["inputs"][sup["sequence_idx"]],
        feature_lens=(sup["num_frames"] if "num_frames" in sup else sup["num_samples"]).long(),
        texts=list(sup["text"]),
        cut_ids=[c.id for c in cuts],
        durations=[float(c.duration) for c in cuts],
    )
