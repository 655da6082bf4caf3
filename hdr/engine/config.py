"""The experiment config: schema, loading, KEY=VALUE overrides and validation.

A config fully describes a run. It is validated before anything else happens, and the
resolved form (every default written out, optimizer defaults included) is what a run records.
"""

from __future__ import annotations

import copy
import difflib
import re
import stat
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hdr.core.errors import UsageError
from hdr.runs import rundir

Activation = Literal["relu", "leaky_relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid", "linear"]
Initializer = Literal[
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "random_normal", "random_uniform",
]
Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
PosFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]

# Sizes far beyond any digit classifier, bounded so that a slip (a list of 20,000 layers, 10**20
# epochs, a kernel of a million pixels) is refused here at once instead of building for minutes
# or running out of memory. The README's config reference states them.
MAX_LAYERS = 100          # items of model.hidden, model.dense, model.conv (and model.dropout)
MAX_WIDTH = 16_384        # units of a dense layer, filters of a conv block
MAX_WINDOW = 64           # a conv block's kernel, stride and pool
MAX_EPOCHS = 100_000      # training.epochs, and every count of epochs (patience, warm-up, decay)
MAX_BATCH = 1_000_000     # training.batch_size and eval_batch_size
MAX_STEPS_PER_EXECUTION = 10_000
Width = Annotated[int, Field(gt=0, le=MAX_WIDTH)]
Window = Annotated[int, Field(gt=0, le=MAX_WINDOW)]
Epochs = Annotated[int, Field(gt=0, le=MAX_EPOCHS)]
EpochSpan = Annotated[float, Field(ge=0.0, le=MAX_EPOCHS)]
Batch = Annotated[int, Field(gt=0, le=MAX_BATCH)]


def _layers(item):
    return Annotated[list[item], Field(max_length=MAX_LAYERS)]


class Strict(BaseModel):
    # Unknown keys are errors: a typo must never be silently ignored. Strict types: `epochs: true`
    # or `learning_rate: "0.01"` is a mistake, not a 1 or a 0.01. No infinities or NaN.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=True)


# ---------------------------------------------------------------- dataset

class Dataset(Strict):
    name: str = Field(description="a dataset of hdr.core.data.DATASETS")
    validation_split: Annotated[float, Field(gt=0.0, lt=1.0)] | None = Field(
        0.2, description="fraction of the training set held out for validation; null: none")

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        from hdr.core.data import DATASETS

        if name not in DATASETS:
            close = difflib.get_close_matches(name, list(DATASETS), n=1)
            near = f"; did you mean {close[0]!r}? (allowed: {_either(DATASETS)})" if close else ""
            raise ValueError(f"{name!r} is not allowed" + (near or f"; allowed: {_either(DATASETS)}"))
        return name


def _either(names) -> str:
    quoted = [repr(n) for n in names]
    return " or ".join(quoted) if len(quoted) < 3 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


# ---------------------------------------------------------------- model

class ConvBlock(Strict):
    filters: Width
    kernel: Window = 3
    # 2 halves the feature map in the conv itself: about 4x less work than a conv then pool 2,
    # which is what makes configs/fast/ fast on a CPU.
    stride: Window = Field(1, description="step of the kernel across the image")
    activation: Activation | None = Field(None, description="default: model.activation")
    padding: Literal["valid", "same"] = "valid"
    pool: Annotated[int, Field(ge=0, le=MAX_WINDOW)] = Field(0, description="max-pooling size after the conv; 0: none")
    dropout: Rate = 0.0
    batch_norm: bool = False


class _ModelBase(Strict):
    initializer: Initializer = "glorot_uniform"


class _Hidden(_ModelBase):
    """A model with hidden layers, and so an activation."""

    leaky_relu_slope: NonNegFloat = Field(0.3, description="negative slope when activation is leaky_relu")


class SLP(_ModelBase):
    """Single-layer perceptron: pixels straight into a softmax layer."""

    type: Literal["slp"]


class MLP(_Hidden):
    """Fully connected hidden layers; dropout > 0 gives the dropout MLP."""

    type: Literal["mlp"]
    hidden: _layers(Width) = Field(default_factory=lambda: [512, 512])
    activation: Activation = "relu"
    dropout: Rate | _layers(Rate) = 0.0
    batch_norm: bool = Field(False, description="batch normalization before each hidden activation")

    @model_validator(mode="after")
    def _dropout_per_layer(self):
        if isinstance(self.dropout, list) and len(self.dropout) != len(self.hidden):
            raise ValueError(
                f"model.dropout has {len(self.dropout)} rates but model.hidden has "
                f"{len(self.hidden)} layers; give one rate per hidden layer or a single number")
        return self


class CNN(_Hidden):
    """Conv blocks, then dense layers, then softmax."""

    type: Literal["cnn"]
    activation: Activation = "relu"
    conv: _layers(ConvBlock) = Field(default_factory=lambda: [
        ConvBlock(filters=32, kernel=3, pool=2), ConvBlock(filters=64, kernel=3, pool=2)])
    dense: _layers(Width) = Field(default_factory=lambda: [100])
    dropout: Rate = Field(0.0, description="dropout after each dense layer")

    @model_validator(mode="after")
    def _inherit_activation(self):
        for block in self.conv:
            if block.activation is None:
                block.activation = self.activation
        return self


def _tag(cls: type[BaseModel], field: str) -> str:
    return cls.model_fields[field].annotation.__args__[0]


# The one list of model types: the config's union, the builders (hdr.engine.models) and the docs follow it.
MODEL_TYPES = {_tag(c, "type"): c for c in (SLP, MLP, CNN)}
Model = Annotated[Union[tuple(MODEL_TYPES.values())], Field(discriminator="type")]


# ---------------------------------------------------------------- optimizer
# Defaults are Keras 3's, written out so that a run records what it used even if Keras
# changes them (it once changed Adadelta's learning rate from 1.0 to 0.001).

# Learning-rate schedules by name; hdr.engine.models implements each.
SCHEDULES = {
    "constant": "the learning rate throughout",
    "cosine": "decay to 0 over the run",
    "exponential": "multiplied by decay_rate every decay_epochs, smoothly",
    "step": "multiplied by decay_rate at the end of every decay_epochs",
    "onecycle": "up from learning_rate/25 over the warm-up (30% of the run if warmup_epochs is 0), "
                "then cosine down to learning_rate/25000",
}


class _OptBase(Strict):
    learning_rate: PosFloat = 0.001
    schedule: Literal[tuple(SCHEDULES)] = Field("constant", description="; ".join(
        f"{k}: {v}" for k, v in SCHEDULES.items()))
    warmup_epochs: EpochSpan = Field(0.0, description="linear warm-up from 0 before any schedule")
    decay_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    decay_epochs: Annotated[float, Field(gt=0.0, le=MAX_EPOCHS)] = 10.0
    clipnorm: PosFloat | None = None
    weight_decay: NonNegFloat | None = Field(None, description="decoupled weight decay; null: none")
    ema_momentum: Rate | None = Field(
        None, description="keep an exponential moving average of the weights with this momentum and end "
                          "the run with it; null: none")


class SGD(_OptBase):
    name: Literal["sgd"]
    learning_rate: PosFloat = 0.01
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    nesterov: bool = False


class Adam(_OptBase):
    name: Literal["adam"]
    beta_1: Rate = 0.9
    beta_2: Rate = 0.999
    epsilon: PosFloat = 1e-7
    amsgrad: bool = False


class AdamW(_OptBase):
    name: Literal["adamw"]
    weight_decay: NonNegFloat | None = 0.004
    beta_1: Rate = 0.9
    beta_2: Rate = 0.999
    epsilon: PosFloat = 1e-7
    amsgrad: bool = False


class Nadam(_OptBase):
    name: Literal["nadam"]
    beta_1: Rate = 0.9
    beta_2: Rate = 0.999
    epsilon: PosFloat = 1e-7


class Adamax(_OptBase):
    name: Literal["adamax"]
    beta_1: Rate = 0.9
    beta_2: Rate = 0.999
    epsilon: PosFloat = 1e-7


class Adagrad(_OptBase):
    name: Literal["adagrad"]
    initial_accumulator_value: NonNegFloat = 0.1
    epsilon: PosFloat = 1e-7


class Adadelta(_OptBase):
    name: Literal["adadelta"]
    rho: Rate = 0.95
    epsilon: PosFloat = 1e-7


class RMSprop(_OptBase):
    name: Literal["rmsprop"]
    rho: Rate = 0.9
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    epsilon: PosFloat = 1e-7
    centered: bool = False


# The one list of optimizers. Each class is named as its Keras class (keras.optimizers.<name>),
# its fields are that class's arguments, and its defaults are Keras 3's. Adding an optimizer is
# a class here and its entry in this tuple.
OPTIMIZERS = {_tag(c, "name"): c for c in (SGD, Adam, AdamW, Nadam, Adamax, Adagrad, Adadelta, RMSprop)}
Optimizer = Annotated[Union[tuple(OPTIMIZERS.values())], Field(discriminator="name")]


# ---------------------------------------------------------------- training

class Augment(Strict):
    """Random changes to the training images, drawn anew each epoch from (seed, epoch); never
    applied to validation, test or prediction."""

    rotation: Annotated[float, Field(ge=0.0, le=180.0)] = Field(0.0, description="degrees, either way")
    translation: Annotated[float, Field(ge=0.0, le=0.5)] = Field(0.0, description="fraction of the size, each axis")
    zoom: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(0.0, description="fraction in or out")
    shear: Annotated[float, Field(ge=0.0, le=1.0)] = Field(0.0, description="fraction of the size, each axis")
    elastic: Annotated[float, Field(ge=0.0)] = Field(
        0.0, description="strength of an elastic distortion (Simard et al. 2003); 0: none")

    def active(self) -> bool:
        return any(v for v in self.model_dump().values())


class EarlyStopping(Strict):
    monitor: Literal[rundir.VAL_ACCURACY, rundir.VAL_LOSS] = rundir.VAL_ACCURACY
    patience: Epochs = 5
    min_delta: NonNegFloat = 0.0
    restore_best: bool = Field(True, description="end with the weights of the best epoch")


class Training(Strict):
    epochs: Epochs = 5
    batch_size: Batch = 128
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 1  # what every backend's seeding accepts
    # Any value gives the same history as 1 (tests/test_perf_paths.py); more is fewer round trips
    # into the backend but a later stop, which waits for the call: auto sizes it per model
    # (hdr.engine.models.auto_steps_per_execution) and run.json records what was used.
    steps_per_execution: Annotated[int, Field(gt=0, le=MAX_STEPS_PER_EXECUTION)] | Literal["auto"] = Field(
        "auto", description="batches run per call into the backend; larger is faster, same result; auto: up to "
                            "16, as many as take about half a second")
    precision: Literal["float32", "mixed_bfloat16", "mixed_float16"] = Field(
        "float32", description="mixed_bfloat16 is faster on GPUs and CPUs with AVX-512 BF16 or AMX (much slower "
                               "on other CPUs), results differ slightly")
    eval_batch_size: Batch = Field(1000, description="batch size for validation and test passes")
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    early_stopping: EarlyStopping | None = Field(
        None, description="stop when the monitored validation figure has not improved for patience epochs")
    tensorboard: bool = Field(
        True, description="write TensorBoard event files into the run folder (RUN/tensorboard/): per-epoch "
                          "curves, the config as hyperparameters, the model graph, hdr evaluate's images")


class Config(Strict):
    dataset: Dataset
    model: Model
    optimizer: Optimizer
    training: Training = Field(default_factory=Training)
    augment: Augment = Field(default_factory=Augment)

    @model_validator(mode="after")
    def _needs_validation(self):
        if self.training.early_stopping is not None and not self.dataset.validation_split:
            raise ValueError("training.early_stopping watches the validation split, but dataset.validation_split "
                             "is null; give a validation_split or drop early_stopping")
        return self

    def resolved(self) -> dict:
        """Plain dict with every default written out, ready to save as YAML."""
        out = self.model_dump(mode="json")
        for section, tag in (("model", "type"), ("optimizer", "name")):
            out[section] = {tag: out[section].pop(tag), **out[section]}
        return out


# ---------------------------------------------------------------- loading

MAX_CONFIG_BYTES = 1 << 20   # a config is a page of YAML; more is not a config
MAX_YAML_NODES = 100_000     # after aliases are expanded: bounds "billion laughs" documents


class _Loader(yaml.SafeLoader):
    """Safe YAML, plus: a key given twice is an error (YAML would silently keep the last), and
    floats without a dot (1e-3) are floats, as in YAML 1.2 and Python."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (the second would silently win)", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _expanded_size(node, memo: dict) -> int:
    """Nodes in the document once every alias is expanded, counted without expanding them."""
    key = id(node)
    if key not in memo:
        memo[key] = 0  # a recursive alias counts once
        children = node.value if isinstance(node.value, list) else []
        total = 1
        for child in children:
            for n in (child if isinstance(child, tuple) else (child,)):
                total += _expanded_size(n, memo)
                if total > MAX_YAML_NODES:
                    break
        memo[key] = total
    return memo[key]


def parse_yaml(text: str, where: str):
    """YAML text -> plain data, refusing documents that expand beyond MAX_YAML_NODES."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None and _expanded_size(node, {}) > MAX_YAML_NODES:
                raise UsageError(f"{where}: the YAML expands to more than {MAX_YAML_NODES:,} values through "
                                 "its aliases (&/*); a config needs no such thing")
            return loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UsageError(f"{where}: YAML syntax error{at}: {problem}") from None
    except RecursionError:
        raise UsageError(f"{where}: the YAML is nested too deeply to be a config") from None


def _load_yaml(path: Path) -> dict:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path} (check the path)") from None
    except OSError as e:
        raise UsageError(f"cannot read config {path}: {e.strerror}") from None
    if path.is_dir():
        raise UsageError(f"config path is a folder, not a file: {path}")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path} is not a regular file (a device or pipe?); give a YAML config file")
    if st.st_size > MAX_CONFIG_BYTES:
        raise UsageError(f"{path} is {st.st_size:,} bytes, too large to be a config (at most {MAX_CONFIG_BYTES:,})")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read config {path}: {e.strerror}") from None
    if not raw.strip():
        raise UsageError(f"{path}: the config file is empty; see configs/ for examples")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file (is it binary?); a config is YAML text") from None
    if "\x00" in text:
        raise UsageError(f"{path}: not a text file (is it binary?); a config is YAML text")
    data = parse_yaml(text, str(path))
    if data is None:
        raise UsageError(f"{path}: the config file is empty; see configs/ for examples")
    if not isinstance(data, dict):
        raise UsageError(
            f"{path}: a config must be a mapping with sections dataset, model, optimizer, training; "
            f"got a {type(data).__name__}")
    return data


def split_values(text: str) -> list[str]:
    """Split V1,V2,... on the commas outside brackets and quotes, so a value may itself be a
    YAML list: model.hidden=[256],[512,512] is two values."""
    values, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i])
            start = i + 1
    values.append(text[start:])
    return [v.strip() for v in values]


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise UsageError(f"override {item!r} is not KEY=VALUE (example: training.epochs=1)")
    key, value = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise UsageError(f"override {item!r}: the key must be a dotted path such as training.epochs")
    try:
        parsed = parse_yaml(value, "override") if value.strip() else None
    except UsageError:
        parsed = value  # not valid YAML: take it as a plain string, validation will judge it
    return key.split("."), parsed


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    data = copy.deepcopy(data)
    for item in overrides:
        try:
            _apply_one(data, item)
        except UsageError as e:
            if str(e).startswith("override"):
                raise
            raise UsageError(f"override {item!r}: {e}") from None
    return data


def _apply_one(data: dict, item: str) -> None:
    path, value = parse_override(item)
    node: Any = data
    for i, part in enumerate(path[:-1]):
        dotted = ".".join(path[: i + 1])
        if isinstance(node, list):
            node = _list_item(node, part, dotted)
            continue
        if not isinstance(node, dict):
            raise UsageError(f"override {item!r}: {dotted} is not a section")
        if node.get(part) is None:
            if path[i + 1].lstrip("-").isdigit():
                raise UsageError(
                    f"override {item!r}: {dotted} is not in the config, so it has no item {path[i + 1]}; "
                    f"set the whole list instead ({dotted}=[...])")
            node[part] = {}
        node = node[part]
    last = path[-1]
    if isinstance(node, list):
        idx = _index(node, last, ".".join(path))
        node[idx] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise UsageError(f"override {item!r}: {'.'.join(path[:-1])} is not a section")


def _index(node: list, part: str, dotted: str) -> int:
    try:
        idx = int(part)
    except ValueError:
        raise UsageError(f"{dotted}: this is a list; use a number index such as 0") from None
    if not -len(node) <= idx < len(node):
        raise UsageError(f"{dotted}: index {idx} out of range; the list has {len(node)} items")
    return idx


def _list_item(node: list, part: str, dotted: str):
    return node[_index(node, part, dotted)]


def _dotted(loc: tuple, kind: str = "") -> str:
    # pydantic puts the union's tag in the location (model.cnn.conv.0...), and the branch of a
    # plain union (model.dropout.list[constrained-float]); drop them. Only an unknown key (the
    # last part of an extra_forbidden error) is the user's own text, kept as given.
    parts = [str(p) for p in loc]
    out = []
    for i, p in enumerate(parts):
        if i == 1 and parts[0] in ("model", "optimizer") and p in (*MODEL_TYPES, *OPTIMIZERS):
            continue
        users = kind == "extra_forbidden" and i == len(parts) - 1
        if not (users or p.isidentifier() or p.isdigit()):
            continue
        out.append(p)
    return ".".join(out)


def _tagged(key: str, kind: str) -> str:
    """The key an error is about: a tagged union's errors are about its tag (model.type)."""
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return f"{key}.{'type' if key == 'model' else 'name'}"
    return key


_SECTION_CLASSES = {"dataset": Dataset, "training": Training, "augment": Augment,
                    "training.early_stopping": EarlyStopping, "": Config}


def _suggest(word, choices: list[str], what: str = "allowed", quote: bool = False) -> str:
    """'; allowed: ...', led by the nearest choice when the word looks like a misspelling of one."""
    shown = [repr(c) if quote else c for c in choices]
    close = difflib.get_close_matches(str(word), choices, n=1)
    if close:
        return f"; did you mean {repr(close[0]) if quote else close[0]}? ({what}: {', '.join(shown)})"
    return f"; {what}: {', '.join(shown)}"


def _quoted(expected: str) -> list[str]:
    """The choices pydantic lists as "'a', 'b' or 'c'"."""
    return re.findall(r"'([^']*)'", expected)


def _describe_error(err: dict, data: dict) -> str:
    loc = err["loc"]
    kind = err["type"]
    key = _dotted(loc, kind)
    value = err.get("input")
    ctx = err.get("ctx", {})
    if kind == "extra_forbidden":
        parent, _, last = key.rpartition(".")
        cls = _class_for(parent, data)
        return f"{key}: unknown key" + (_suggest(last, list(cls.model_fields), "allowed keys") if cls else "")
    if kind == "missing":
        return f"{key}: required key is missing"
    if kind == "union_tag_not_found":
        return f"{_tagged(key, kind)}: required key is missing; allowed: {ctx.get('expected_tags', '')}"
    if kind == "union_tag_invalid":
        got = ctx.get("tag")
        tag = _tagged(key, kind).rpartition(".")[2]
        return (f"{key}.{tag}: unknown {key} {tag} {got!r}"
                + _suggest(got, _quoted(ctx.get("expected_tags", "")), quote=True))
    if kind == "literal_error":
        return f"{key}: {_shown(value)} is not allowed" + _suggest(value, _quoted(ctx.get("expected", "")), quote=True)
    if kind == "too_long":
        return f"{key}: {ctx['actual_length']:,} items, more than hdr accepts (at most {ctx['max_length']:,})"
    if kind == "less_than_equal":
        return f"{key}: {_shown(value)} is more than hdr accepts (at most {ctx['le']:,})"
    msg = err["msg"]
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
        return msg if key == "model" or not key else f"{key}: {msg}"
    return f"{key}: {_shown(value)} is invalid: {msg.lower()}"


def _shown(value, limit: int = 60) -> str:
    """A value as it may appear in an error: never more than a line."""
    if isinstance(value, dict):
        return "a mapping"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def _class_for(dotted: str, data: dict):
    if dotted in _SECTION_CLASSES:
        return _SECTION_CLASSES[dotted]
    if dotted == "model":
        return MODEL_TYPES.get((data.get("model") or {}).get("type"))
    if dotted == "optimizer":
        return OPTIMIZERS.get((data.get("optimizer") or {}).get("name"))
    if dotted.startswith("model.conv."):
        return ConvBlock
    return None


def key_paths() -> list[str]:
    """Every key of the schema as a dotted path, a list's items as N (model.conv.N.filters), in
    order: what an unknown command-line option may have meant."""
    sections = {"dataset": [Dataset], "model": MODEL_TYPES.values(), "model.conv.N": [ConvBlock],
                "optimizer": OPTIMIZERS.values(), "training": [Training],
                "training.early_stopping": [EarlyStopping], "augment": [Augment]}
    keys = {f"{section}.{name}": None for section, classes in sections.items()
            for cls in classes for name in cls.model_fields}
    return list(keys)


def _first_problem(errors: list[dict]) -> tuple[dict, int]:
    """The error to report and how many other problems there are. Of the branches of a union
    (model.dropout: a rate or a list of rates), the one for the kind of value given."""
    first = errors[0]
    branches = [e for e in errors if _dotted(e["loc"]) == _dotted(first["loc"]) and e["loc"] != first["loc"]]
    if branches and isinstance(first.get("input"), list):
        first = next((e for e in branches if str(e["loc"][-1]).startswith("list")), first)
    return first, len(errors) - 1 - len(branches)


def _culprit(key: str, overrides) -> str | None:
    """The last override that set key, a section holding it, or a key inside it."""
    for item in reversed(list(overrides)):
        path = item.partition("=")[0].strip()
        if key and (path == key or key.startswith(path + ".") or path.startswith(key + ".")):
            return item
    return None


def _where(key: str, source: str, overrides) -> str:
    """Where a mistake in key lies: the override that set it, or the file."""
    item = _culprit(key, overrides)
    return f"override {_shown(item)}" if item is not None else source


def validate(data: dict, source: str = "config", overrides=()) -> Config:
    """The validated config, or a one-line UsageError naming the key, the value and where it was
    given: source (the file), or one of overrides when one of them set it."""
    for section in ("dataset", "model", "optimizer"):
        if section in data and not isinstance(data[section], dict):
            raise UsageError(f"{_where(section, source, overrides)}: {section}: must be a mapping of keys, "
                             f"got {_shown(data[section])}")
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        first, more = _first_problem(e.errors())
        extra = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        where = _where(_tagged(_dotted(first["loc"], first["type"]), first["type"]), source, overrides)
        raise UsageError(f"{where}: {_describe_error(first, data)}{extra}") from None


def load(path: str | Path, overrides: list[str] | None = None) -> Config:
    path = Path(path)
    data = _load_yaml(path)
    data = apply_overrides(data, overrides or [])
    return validate(data, source=str(path), overrides=overrides or ())


# Keys that earlier versions of hdr wrote into a run's config.yaml and that mean nothing now: a
# run folder made by them must still evaluate and resume.
_RETIRED = {("model", "leaky_relu_slope"): lambda data: (data.get("model") or {}).get("type") == "slp"}


def load_run_config(path: str | Path) -> Config:
    """The config of an existing run folder (its config.yaml), written by this or an earlier hdr."""
    path = Path(path)
    data = _load_yaml(path)
    for (section, key), retired in _RETIRED.items():
        if isinstance(data.get(section), dict) and retired(data):
            data[section].pop(key, None)
    return validate(data, source=str(path))


def resumable(folder: Path) -> tuple[dict, Config]:
    """(run.json, config) of a run folder that `hdr train --resume` may continue (a completed one
    only to extend it: _extendable), or the one-line UsageError saying why not: still running, its
    config.yaml edited, no checkpoint.
    Files only, no framework: the CLI asks before it imports Keras. The caller holds (or has just
    probed) the folder's lock."""
    folder = Path(folder)
    info = rundir.read_json(folder / rundir.RUN)
    status = rundir.effective_status(info)
    if status == rundir.RUNNING:
        raise UsageError(f"{folder} is still running (pid {info.get('pid')}); stop it first")
    cfg = load_run_config(folder / rundir.CONFIG)
    if status == rundir.COMPLETED:
        _extendable(folder, info, cfg)
    if info.get("config_fingerprint") not in (None, fingerprint(cfg)):
        raise UsageError(f"{folder}/{rundir.CONFIG} was changed after the run started, and a run goes on only with the "
                         "config it began with (training.epochs aside); to train the changed config, start a new "
                         f"run: hdr train {folder}/{rundir.CONFIG}")
    history = rundir.read_history(folder / rundir.HISTORY)
    if status != rundir.COMPLETED and (not history or not rundir.checkpoint(folder, len(history)).is_file()):
        raise UsageError(f"{folder} has no checkpoint of a completed epoch to resume from; start a new run instead")
    return info, cfg


# Schedules whose shape depends on the length of the run.
_RUN_LENGTH_SCHEDULES = {"cosine", "onecycle"}
EXTENDABLE = ("a completed run can be extended (a raised training.epochs in its config) when its schedule is "
              "constant, exponential or step, without optimizer.ema_momentum, and early stopping neither ended it "
              "nor restored an earlier epoch")


def _extendable(folder: Path, info: dict, cfg: Config) -> None:
    """Nothing, where `hdr train --resume` of a completed run can go on exactly as if it had been
    planned longer: its model.keras is the last epoch's weights and optimizer state (the
    checkpoint it was linked from), its schedule does not span the planned run. Else the
    UsageError saying why not."""
    done = len(rundir.read_history(folder / rundir.HISTORY))
    metrics = rundir.read_json(folder / rundir.METRICS) if (folder / rundir.METRICS).is_file() else {}
    stopping = metrics.get("early_stopping") or {}
    if cfg.training.epochs <= done:  # not asked to extend it
        raise UsageError(f"{folder} is already completed ({done} epochs); nothing to resume; to extend it, raise "
                         f"training.epochs in {folder}/{rundir.CONFIG} above {done}")
    why = None
    if cfg.optimizer.schedule in _RUN_LENGTH_SCHEDULES:
        why = f"its {cfg.optimizer.schedule} schedule spans the {info.get(rundir.EPOCHS_PLANNED, done)} epochs it was planned for"
    elif cfg.optimizer.ema_momentum is not None:
        why = f"its {rundir.MODEL} holds the averaged weights of optimizer.ema_momentum, not the trained ones"
    elif stopping.get("restored_best"):
        why = f"early stopping put the weights of epoch {stopping.get(rundir.BEST_EPOCH)} into its {rundir.MODEL}"
    elif stopping.get("stopped_epoch") is not None:
        why = f"early stopping ended it at epoch {done}"
    elif not (folder / rundir.MODEL).is_file():
        why = f"it has no {rundir.MODEL}"
    if why:
        raise UsageError(f"{folder} is completed and cannot be extended exactly: {why} ({EXTENDABLE})")


def fingerprint(cfg: Config) -> str:
    """What a run may not change when it is resumed: the whole config, except training.epochs
    (a run may be extended or shortened) unless the learning-rate schedule follows the run's length,
    and training.tensorboard."""
    import hashlib
    import json

    data = cfg.resolved()
    # Logging, not training: runs from before the key existed resume, and a resume may turn it off.
    data["training"].pop("tensorboard")
    for block in data["model"].get("conv", []):
        if block["stride"] == 1:
            block.pop("stride")  # the layer runs made before the key existed had: their resume goes on
    if data["training"].get("steps_per_execution") == "auto":
        # The old default's value: auto changes no result, and the sweeps, searches and cross-
        # validations started when 16 was the default still find their config unchanged.
        data["training"]["steps_per_execution"] = 16
    if cfg.optimizer.schedule not in _RUN_LENGTH_SCHEDULES:
        data["training"].pop("epochs")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def dump(cfg: Config) -> str:
    return yaml.safe_dump(cfg.resolved(), sort_keys=False, default_flow_style=False)
