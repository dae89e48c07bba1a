"""The typed configuration of a training run: a tree of small dataclasses.

Each field carries its own help text (``metadata["help"]``); ``allinone.training.cli``
turns every field into a flat, icefall-style ``--dashed-name`` flag, so flag names stay
unique across sections. Checkpoints store the flat form (``TrainConfig.to_flat_dict``),
which is what resumes and the reports compare.
"""

from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from allinone.checkpoint.weights import WEIGHT_MODES
from allinone.data.channel_copies import parse_channel_kinds
from allinone.nn.ffn_order import UNIT_ORDERS
from allinone.nn.model import ModelConfig
from allinone.nn.ssl import SSL_KINDS, read_pretrained_config
from allinone.subnet import SubnetConfig, SubnetError, full_subnet, parse_subnets
from allinone.training.nested import POLICIES
from allinone.utils.device import DEVICES, amp_dtype
from allinone.utils.options import option

# ModelConfig fields the run decides itself (from the BPE model, the heads it trains and
# the grid), not a user's --model key.
DERIVED_MODEL_FIELDS = ("vocab_size", "blank_id", "use_transducer", "use_ctc", "norm_subnets", "unfold_relax")


@dataclass
class RunOptions:
    """Where the run writes, how long it runs, how it is resumed and logged."""

    exp_dir: Path = option(Path("exp"), "experiment directory: checkpoints, log/, tensorboard/")
    num_epochs: int = option(4, "train up to and including this epoch")
    start_epoch: int = option(
        1,
        "resume from epoch-(N-1).pt and train epoch N onwards (without this or --start-batch, an "
        "--exp-dir holding checkpoints is refused, not overwritten)",
    )
    start_batch: int = option(
        0, "resume from checkpoint-N.pt (N = global batch index) at the next unseen batch"
    )
    seed: int = option(42, "seed of initialisation, data order, augmentation and subnet draws")
    world_size: int = option(
        1,
        "data-parallel processes spawned on this machine (gloo on CPU, nccl on GPU); under torchrun "
        "its WORLD_SIZE is used instead",
    )
    master_port: int = option(12354, "port of the process group's rendezvous on this machine")
    device: str = option("auto", "where to train: cuda (one GPU per process), cpu, or auto", choices=DEVICES)
    use_fp16: bool = option(
        False,
        "float16 autocast with a dynamic gradient scaler (losses, quantizer steps, centroids stay float32)",
    )
    use_bf16: bool = option(False, "bfloat16 autocast (no gradient scaler needed); excludes --use-fp16")
    save_every_n: int = option(100, "write checkpoint-<global batch>.pt every N batches (0: never)")
    keep_last_k: int = option(5, "keep only the newest K checkpoint-*.pt files")
    log_interval: int = option(20, "log the running losses every N batches")
    max_consecutive_bad_batches: int = option(
        20, "stop when this many batches in a row have non-finite losses (training has diverged)"
    )
    tensorboard: bool = option(True, "write tensorboard scalars to <exp-dir>/tensorboard")


@dataclass
class DataOptions:
    """Manifests, tokens and batching."""

    bpe_model: Path = option(Path("data/lang_bpe_64/bpe.model"), "sentencepiece model of the lang dir")
    manifest_dir: Path = option(Path("data/fbank"), "directory of the cut manifests with features")
    train_cuts: str = option("cuts_train.jsonl.gz", "training cuts, relative to --manifest-dir")
    valid_cuts: str = option("cuts_dev.jsonl.gz", "validation cuts, relative to --manifest-dir")
    max_duration: float = option(120.0, "seconds of audio per batch (per process)")
    num_buckets: int = option(10, "duration buckets of the training sampler")
    num_workers: int = option(1, "data-loader worker processes")
    on_the_fly_feats: bool = option(
        False, "compute fbank from the audio in the data loader instead of reading stored features"
    )
    perturb_speed: bool = option(
        False,
        "on-the-fly speed perturbation (0.9x / 1.1x, each with chance 1/3); needs --on-the-fly-feats "
        "(stored features are perturbed at preparation time instead)",
    )
    enable_musan: bool = option(
        False, "mix MUSAN noise into training cuts (lhotse CutMix, SNR 10-20 dB, p 0.5)"
    )
    musan_cuts: Path = option(Path("data/fbank/musan_cuts.jsonl.gz"), "MUSAN cut set for --enable-musan")
    channel_copies: str = option(
        "",
        "comma list of channel kinds (telephone, microphone) whose stored copies of the training cuts "
        "(<train-cuts>-<kind>.jsonl.gz, local/compute_channel_copies.py) a cut may be heard as",
    )
    channel_copy_prob: float = option(
        0.0, "chance that an epoch hears a training cut as one of its --channel-copies (split evenly)"
    )
    sortagrad_epochs: int = option(
        1, "epochs (from the first) whose batches go from short to long utterances"
    )
    spec_augment: bool = option(
        True,
        "SpecAugment time and frequency masks on training fbank batches (wav2vec 2.0 / HuBERT mask "
        "their own features, as their transformers config sets)",
    )
    max_batches_per_epoch: int = option(
        0, "stop each epoch after N batches (0: whole epoch); for smoke tests"
    )

    @property
    def channel_copy_kinds(self) -> Tuple[str, ...]:
        """The kinds of ``--channel-copies``, checked."""
        try:
            return parse_channel_kinds(self.channel_copies)
        except ValueError as e:
            raise ValueError(f"--channel-copies: {e}") from None


@dataclass
class OptimOptions:
    """Optimizer, learning-rate schedule and weight averaging."""

    base_lr: float = option(3e-3, "peak learning rate of AdamW")
    warmup_batches: int = option(200, "batches of linear learning-rate warm-up")
    lr_batches: float = option(1500.0, "batch scale of the learning-rate decay")
    lr_epochs: float = option(6.0, "epoch scale of the learning-rate decay")
    weight_decay: float = option(1e-3, "AdamW weight decay of the model weights")
    quantizer_weight_decay: float = option(
        0.0, "AdamW weight decay of LSQ step sizes and GQ centroids (bit-width logits: never decayed)"
    )
    clip_grad_norm: float = option(5.0, "clip the gradient norm to this (0: no clipping)")
    average_period: int = option(10, "update the running-average model every N batches")
    mp_lr_scale: float = option(50.0, "learning rate of the bit-width logits relative to the weights'")


@dataclass
class LossOptions:
    """Which heads train and how their losses are weighted."""

    use_transducer: bool = option(True, "train the pruned transducer head")
    use_ctc: bool = option(False, "add a CTC head on the encoder (auxiliary loss, or the only one)")
    ctc_loss_scale: float = option(0.2, "weight of the CTC loss")
    prune_range: int = option(5, "symbols per frame the pruned RNN-T loss keeps")
    lm_scale: float = option(0.25, "weight of the decoder-only term of the smoothed simple loss")
    am_scale: float = option(0.0, "weight of the encoder-only term of the smoothed simple loss")
    simple_loss_scale: float = option(0.5, "weight of the simple loss after warm-up")
    warm_step: int = option(
        300, "batches over which the loss moves from the simple to the pruned transducer loss"
    )
    loss_backend: str = option(
        "torch", "'torch' (pure PyTorch pruned RNN-T) or 'k2' (needs import k2)", choices=("torch", "k2")
    )


@dataclass
class NestedOptions:
    """The subnets trained together and how each step samples and distils them."""

    subnets: str = option(
        "",
        "nested training grid: a preset name (default, depth, width, bits, full) or comma-separated "
        "subnet names such as d6-w1.0-b32,d4-w0.5-b4; empty: the full float model",
    )
    subnet_policy: str = option(
        "auto",
        "subnets run per step: all, sandwich (largest + smallest + k random), largest_random (largest "
        "+ k random among all others), or auto (all up to 6 subnets, else sandwich)",
        choices=POLICIES,
    )
    sandwich_k: int = option(
        2,
        "subnets drawn at random per step (sandwich: from the middle subnets; "
        "largest_random: from all but the largest)",
    )
    subnet_loss_weights: str = option("", "per-subnet loss weights as NAME=W,NAME=W (others 1.0)")
    subnet_draw_weights: str = option(
        "",
        "sandwich / largest_random: relative chance of a subnet to be drawn, as NAME=W,NAME=W "
        "(others 1.0; none given: uniform)",
    )
    distill: bool = option(
        False, "add KL from the detached largest subnet (or --teacher-checkpoint) to the others"
    )
    distill_scale: float = option(1.0, "weight of a student's KL term")
    student_label_scale: float = option(0.5, "weight of a student's label losses when distilling")
    distill_start_batch: int = option(0, "global batch from which distillation runs (labels only before it)")
    distill_students: str = option(
        "",
        "comma-separated subnets that get the KL term (empty: every subnet but the teacher); 'seed' "
        "names the physical model run once (unfolding's paper distils into the seed alone)",
    )
    warmup_subnet: str = option(
        "",
        "one subnet (e.g. the 6-layer seed of a deeper model; 'seed' names it) trained alone for the "
        "first --warmup-subnet-batches batches",
    )
    warmup_subnet_batches: int = option(0, "length of the --warmup-subnet phase in global batches (0: none)")
    unfold_relax: bool = option(False, "give each repeat of an unfolded block its own output gain and bias")


@dataclass
class CompressionOptions:
    """What a compression run adds: the float start, a frozen teacher, quantizer schedules."""

    init_from: str = option(
        "",
        "start from this trained (float) checkpoint's weights (--float-weights); "
        "quantizers are initialised from them",
    )
    pretrained_dir: str = option(
        "",
        "with --model encoder=wav2vec2|hubert: the encoder's architecture and weights from this local "
        "checkpoint directory in the Hugging Face Hub's layout (config.json and model.safetensors or "
        "pytorch_model.bin); the CTC / transducer heads start fresh",
    )
    float_weights: str = option(
        "epoch-mean",
        "which weights --init-from and --teacher-checkpoint give: epoch-mean (the mean over the "
        "steps of the epoch an end-of-epoch file closes, epoch-N.pt or best-valid-loss.pt: what "
        "decode.py --avg 1 --use-averaged-model true scores) or final (the file's last weights, "
        "e.g. of a checkpoint-N.pt)",
        choices=WEIGHT_MODES,
    )
    reorder_ffn_units: str = option(
        "none",
        "with --init-from: order each FFN's hidden units once, most important first, so width prefixes keep "
        "the strongest (none, weight-norm: |row of W1| x |column of W2|)",
        choices=UNIT_ORDERS,
    )
    teacher_checkpoint: str = option(
        "", "frozen float model whose outputs every subnet distils (with --distill true)"
    )
    bit_map: str = option(
        "", "fix each layer's bit-width from this bit-map.json (subnet bits 'mix'; two-stage)"
    )
    gq_alpha_start: float = option(100.0, "general quantizer: softmax sharpness at the first batch")
    gq_alpha_end: float = option(
        1e5, "general quantizer: sharpness after --gq-anneal-batches (geometric ramp)"
    )
    gq_anneal_batches: int = option(300, "general quantizer: batches of the ramp; hard assignment afterwards")
    gq_hard_grad: str = option(
        "ste",
        "general quantizer: gradient of the hard phase, 'ste' (straight through the assignment: weights "
        "keep training) or 'soft' (the soft assignment's, which vanishes at large sharpness)",
        choices=("ste", "soft"),
    )
    freeze_weights: bool = option(
        False,
        "train only the quantizer steps and bit-width logits over the --init-from weights (the search stage "
        "of an independent two-stage mixed-precision run; its bit-map.json then goes to --bit-map)",
    )
    mp_target_bits: float = option(
        0.0, "one-stage mixed precision: average bit-width the penalty drives to (0: off)"
    )
    mp_penalty_scale: float = option(1.0, "weight of (expected average bits - target)^2")
    mp_tau_start: float = option(1.0, "Gumbel-softmax temperature at the first batch")
    mp_tau_end: float = option(0.1, "Gumbel-softmax temperature after --mp-anneal-batches (geometric)")
    mp_anneal_batches: int = option(300, "batches of the temperature ramp")
    mp_finalise_batch: int = option(
        0,
        "global batch after which the bit map is fixed (budgeted argmax) and the rest of the run trains "
        "at it (0: when the temperature ramp ends)",
    )

    def __post_init__(self) -> None:
        if self.float_weights not in WEIGHT_MODES:
            raise ValueError(f"--float-weights {self.float_weights!r}: choose from {WEIGHT_MODES}")


SECTIONS = {
    "run": RunOptions,
    "data": DataOptions,
    "optim": OptimOptions,
    "loss": LossOptions,
    "nested": NestedOptions,
    "compression": CompressionOptions,
}


@dataclass
class TrainConfig:
    """Everything a training run depends on.

    ``model`` holds the architecture and its quantizer config (``ModelConfig.quant_config``);
    the fields the run derives itself (``DERIVED_MODEL_FIELDS``) are filled in by the
    trainer. ``grid`` is the nested plan's subnets and ``warmup`` the optional warm-up
    subnet, parsed from ``nested`` against the model's depth.
    """

    run: RunOptions = field(default_factory=RunOptions)
    data: DataOptions = field(default_factory=DataOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    loss: LossOptions = field(default_factory=LossOptions)
    nested: NestedOptions = field(default_factory=NestedOptions)
    compression: CompressionOptions = field(default_factory=CompressionOptions)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(vocab_size=0))

    @property
    def raw_audio(self) -> bool:
        """Whether batches carry waveforms: the encoder reads audio (wav2vec 2.0 / HuBERT)."""
        return self.model.encoder in SSL_KINDS

    def __post_init__(self) -> None:
        amp_dtype(self.run.use_fp16, self.run.use_bf16)  # both set is an error
        if self.data.on_the_fly_feats and self.raw_audio:
            raise ValueError(
                f"--on-the-fly-feats: the {self.model.encoder} encoder reads the waveform itself"
            )
        if self.data.perturb_speed and not (self.data.on_the_fly_feats or self.raw_audio):
            raise ValueError(
                "--perturb-speed true needs --on-the-fly-feats true; with stored features, perturb at "
                "preparation time (compute_fbank.py --perturb-speed-splits)"
            )
        if self.data.channel_copy_prob and not self.data.channel_copy_kinds:
            raise ValueError("--channel-copy-prob needs --channel-copies (the channel kinds to hear)")
        if self.data.channel_copy_kinds and (self.data.on_the_fly_feats or self.raw_audio):
            raise ValueError(
                "--channel-copies are stored features: they exclude on-the-fly features and raw audio"
            )
        if not 0.0 <= self.data.channel_copy_prob <= 1.0:
            raise ValueError(f"--channel-copy-prob {self.data.channel_copy_prob} is not within [0, 1]")
        if self.compression.pretrained_dir:
            self._read_pretrained_architecture()
        elif self.raw_audio and not self.model.ssl_config:
            raise ValueError(
                f"a {self.model.encoder} encoder starts from a checkpoint: give --pretrained-dir "
                "(a local directory in the Hugging Face Hub's layout)"
            )
        # Checked here: an impossible grid fails before anything is built.
        self.grid: Tuple[SubnetConfig, ...] = tuple(self._parse_grid())
        self.warmup: Optional[SubnetConfig] = self._parse_warmup()
        self.distill_students: Tuple[str, ...] = tuple(
            self._seed_name(n.strip()) for n in self.nested.distill_students.split(",") if n.strip()
        )

    def _read_pretrained_architecture(self) -> None:
        """Size the model as the ``--pretrained-dir`` checkpoint (its transformers config)."""
        if not self.raw_audio:
            raise ValueError(
                "--pretrained-dir loads a wav2vec 2.0 / HuBERT checkpoint: add --model encoder=wav2vec2 "
                "(or encoder=hubert)"
            )
        hf = read_pretrained_config(self.model.encoder, Path(self.compression.pretrained_dir))
        self.model = replace(
            self.model,
            ssl_config=hf,
            d_model=hf["hidden_size"],
            num_layers=hf["num_hidden_layers"],
            ffn_dim=hf["intermediate_size"],
        )

    def _seed_name(self, name: str) -> str:
        """``seed`` names the physical model run once (an unfolding grid's seed), e.g. d6-w1.0-b32."""
        return full_subnet(self.model.num_layers).name if name == "seed" else name

    def _parse_grid(self) -> List[SubnetConfig]:
        layers = self.model.num_layers
        return parse_subnets(self.nested.subnets or full_subnet(layers).name, layers)

    def _parse_warmup(self) -> Optional[SubnetConfig]:
        if not self.nested.warmup_subnet:
            return None
        parsed = parse_subnets(self._seed_name(self.nested.warmup_subnet), self.model.num_layers)
        if len(parsed) != 1:
            raise SubnetError(f"--warmup-subnet takes one subnet, got {[s.name for s in parsed]}")
        return parsed[0]

    def model_for(self, vocab_size: int, blank_id: int) -> ModelConfig:
        """The run's model config before the grid's per-subnet state (``build_model`` adds it):
        the architecture with the BPE model's vocabulary and the heads this run trains."""
        return replace(
            self.model,
            vocab_size=vocab_size,
            blank_id=blank_id,
            use_transducer=self.loss.use_transducer,
            use_ctc=self.loss.use_ctc,
        )

    def model_overrides(self) -> Dict[str, Any]:
        """The ``ModelConfig`` fields that differ from its defaults (the run's ``--model`` keys)."""
        default = ModelConfig(vocab_size=0).to_dict()
        ours = self.model.to_dict()
        return {k: v for k, v in ours.items() if k not in DERIVED_MODEL_FIELDS and v != default[k]}

    def to_flat_dict(self) -> Dict[str, Any]:
        """Every option under its flag name (paths as strings), plus ``model``: the overrides."""
        flat: Dict[str, Any] = {}
        for section in SECTIONS:
            for k, v in asdict(getattr(self, section)).items():
                flat[k] = str(v) if isinstance(v, Path) else v
        flat["model"] = self.model_overrides()
        return flat

    @classmethod
    def from_flat(cls, model: Optional[Dict[str, Any]] = None, **flat: Any) -> "TrainConfig":
        """A config from flag-named values (unknown names are an error naming them)."""
        by_section: Dict[str, Dict[str, Any]] = {s: {} for s in SECTIONS}
        owner = {f.name: s for s, kind in SECTIONS.items() for f in fields(kind)}
        unknown = sorted(set(flat) - set(owner))
        if unknown:
            raise ValueError(f"unknown training options {unknown}")
        for k, v in flat.items():
            by_section[owner[k]][k] = v
        sections = {s: kind(**by_section[s]) for s, kind in SECTIONS.items()}
        return cls(**sections, model=replace(ModelConfig(vocab_size=0), **(model or {})))

    def options(self) -> Iterator[Tuple[str, Any]]:
        """(flag name, value) of every option, section by section."""
        for section in SECTIONS:
            for f in fields(getattr(self, section)):
                yield f.name, getattr(getattr(self, section), f.name)


def parse_model_overrides(pairs: Optional[List[str]]) -> Dict[str, Any]:
    """``["d_model=192", "num_layers=8"]`` -> ``{"d_model": 192, "num_layers": 8}``, typed as
    ``ModelConfig``'s fields; later pairs win.

    Raises:
        ValueError: naming an unknown key (or one the run derives itself) or a value of the wrong type.
    """
    out: Dict[str, Any] = {}
    types = {f.name: type(f.default) for f in fields(ModelConfig) if f.default is not MISSING}
    settable = sorted(k for k in types if k not in DERIVED_MODEL_FIELDS)
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or key not in settable:
            raise ValueError(f"unknown model option {key!r} in --model {pair!r}; valid: {settable}")
        kind = types[key]
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"model option {key} takes true/false, got {value!r}")
            out[key] = value.lower() in ("true", "1")
        else:
            try:
                out[key] = kind(value)
            except ValueError:
                raise ValueError(f"model option {key} takes a {kind.__name__}, got {value!r}") from None
    return out
