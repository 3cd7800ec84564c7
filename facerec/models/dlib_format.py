"""A reader for the networks dlib's DNN toolkit serialises to ``.dat`` files.

Why read it ourselves: the public-domain face recognition ResNet we ship as
the offline default (``dlib_face_recognition_resnet_model_v1.dat``) exists only
in dlib's own binary format. Depending on dlib at run time would mean a large
C++ extension (and, from source, a CMake build) just to read 22 MB of floats,
so this module parses the file with numpy and the standard library and the
network itself runs in PyTorch (`facerec.models.dlib_resnet`).

Where the format comes from: dlib's source (github.com/davisking/dlib), read
for this port, not copied:

* ``dlib/serialize.h``: integers are a control byte (low nibble = number of
  little-endian payload bytes that follow, bit 0x80 = negative for signed
  types) then the payload; strings are such an integer length then the bytes;
  ``bool`` is the ASCII character ``'0'`` or ``'1'``; scalar floats are an
  (int64 mantissa, int16 exponent) pair of such integers meaning
  ``mantissa * 2**exponent`` (exponents 32000/32001/32002 are +inf/-inf/NaN).
* ``dlib/cuda/tensor.h``: a tensor is version 2, then (num_samples, k, nr, nc)
  as integers, then that many raw little-endian float32 values; an
  ``alias_tensor`` (a view into a layer's flat parameter tensor) is version 1
  and the four dimensions, no data.
* ``dlib/dnn/core.h``: a network is written from the output end. The loss
  layer writes its version (1), its details, then its sub-network; every
  ``add_layer`` writes its version, *then its whole sub-network*, then its own
  layer details and bookkeeping (three bools and two or three tensors, normally empty
  in a saved model). So the file is a chain of version numbers down to the
  input layer, followed by the layers' details in input-to-output order.
  ``add_tag_layer`` and ``add_skip_layer`` write only a version (1): their tag
  IDs are C++ template arguments, not data, so the file cannot tell a tag
  from a skip, nor which tag an ``add_prev`` adds. The reader reports those as
  ``"tag_or_skip"`` markers and leaves the wiring to the architecture
  (`facerec.models.dlib_resnet` knows dlib's residual templates).
* ``dlib/dnn/layers.h``, ``input.h``, ``loss.h``: each layer's details start
  with a version string (``"con_4"``, ``"fc_2"``, ``"affine_"``, ``"relu_"``,
  ``"add_prev_"``, ``"avg_pool_2"``, ``"max_pool_2"``, ``"bn_con2"``,
  ``"input_rgb_image_sized"``, ``"loss_metric_2"``...) followed by its fields.

Tensor layouts: a convolution's filters are (num_filters, k, nr, nc), the
same as PyTorch's (out, in, h, w), stored before the biases in one flat
tensor; an fc layer's weights are (num_inputs, num_outputs), the transpose of
``nn.Linear.weight``, with the bias row (if any) after them.

Anything the reader does not understand raises `facerec.errors.ModelError`
naming the file, the byte offset and what was expected there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facerec.errors import ModelError

FloatArray = npt.NDArray[np.float32]
Scalar = int | float | bool | str

#: dlib's float_details exponents for the non-finite values.
_EXP_INF, _EXP_NINF, _EXP_NAN = 32000, 32001, 32002
#: A dlib tensor larger than this (in floats) is surely a misparse, not a model.
_MAX_TENSOR_FLOATS = 1 << 31


@dataclass(frozen=True, slots=True)
class DlibLayer:
    """One computational layer (or tag/skip marker) of a dlib network.

    `kind` is the layer family without dlib's version suffix: ``"con"``,
    ``"fc"``, ``"affine"``, ``"bn"``, ``"relu"``, ``"add_prev"``,
    ``"avg_pool"``, ``"max_pool"`` or ``"tag_or_skip"``. `version` is the exact
    version string from the file (empty for markers, which have none).
    `attrs` holds the scalar fields (strides, padding, modes, learning-rate
    multipliers...), `params` the named weight arrays, already split out of
    dlib's flat parameter tensor and reshaped (``filters``/``biases`` for con,
    ``weights``/``biases`` for fc, ``gamma``/``beta`` for affine, plus
    ``running_means``/``running_variances`` for bn). `offset` is where the
    layer's data starts in the file, for error messages and debugging.
    """

    kind: str
    version: str
    offset: int
    attrs: dict[str, Scalar] = field(default_factory=dict)
    params: dict[str, FloatArray] = field(default_factory=dict)

    def num_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))


@dataclass(frozen=True, slots=True)
class DlibInput:
    """The input layer: its kind, per-channel pixel averages (R, G, B) and fixed size, if any."""

    kind: str
    avg_rgb: tuple[float, float, float]
    rows: int | None
    cols: int | None


@dataclass(frozen=True, slots=True)
class DlibNetwork:
    """A parsed dlib network: loss, input and the layers between, in forward order.

    `layers[0]` is applied to the input image first; the loss layer is not in
    `layers` (it does not take part in computing the descriptor).
    """

    source: str
    loss: str
    loss_attrs: dict[str, Scalar]
    input: DlibInput
    layers: tuple[DlibLayer, ...]

    def num_params(self) -> int:
        return int(sum(layer.num_params() for layer in self.layers))

    def kinds(self) -> list[str]:
        return [layer.kind for layer in self.layers]


class _Reader:
    """A cursor over the file's bytes that raises ModelError with file and offset."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.view = memoryview(data)
        self.pos = 0
        self.source = source

    # -- errors -------------------------------------------------------------

    def fail(self, expected: str, detail: str, offset: int | None = None) -> ModelError:
        at = self.pos if offset is None else offset
        return ModelError(
            f"{self.source}: not a dlib DNN network file we can read: "
            f"expected {expected} at byte {at} (of {len(self.data)}): {detail}"
        )

    # -- primitives ---------------------------------------------------------

    def _control(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise self.fail(what, "the file ends here (truncated?)")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def _payload(self, size: int, what: str, start: int) -> int:
        end = self.pos + size
        if end > len(self.data):
            raise self.fail(what, "the file ends inside it (truncated?)", start)
        value = int.from_bytes(self.view[self.pos : end], "little")
        self.pos = end
        return value

    def signed(self, what: str, max_bytes: int = 8) -> int:
        """A signed integer in dlib's variable-length encoding."""
        start = self.pos
        ctrl = self._control(what)
        size = ctrl & 0x0F
        if ctrl & 0x70 or size == 0 or size > max_bytes:
            raise self.fail(what, f"invalid integer control byte 0x{ctrl:02x}", start)
        value = self._payload(size, what, start)
        return -value if ctrl & 0x80 else value

    def unsigned(self, what: str, max_bytes: int = 8) -> int:
        """An unsigned integer in dlib's variable-length encoding."""
        start = self.pos
        ctrl = self._control(what)
        size = ctrl & 0x8F  # dlib ignores bits 0x70; 0x80 set means garbage
        if ctrl & 0x70 or size == 0 or size > max_bytes:
            raise self.fail(what, f"invalid integer control byte 0x{ctrl:02x}", start)
        return self._payload(size, what, start)

    def string(self, what: str, max_len: int = 256) -> str:
        """A length-prefixed string; layer version strings are short ASCII."""
        start = self.pos
        n = self.unsigned(f"{what} (string length)")
        if n > max_len:
            raise self.fail(what, f"implausible string length {n}", start)
        end = self.pos + n
        if end > len(self.data):
            raise self.fail(what, "the file ends inside the string (truncated?)", start)
        raw = bytes(self.view[self.pos : end])
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(what, f"non-ASCII bytes {raw[:16]!r}", start) from None
        self.pos = end
        return text

    def peek_string(self) -> str | None:
        """The string at the cursor if there is a plausible one, without moving."""
        pos = self.pos
        try:
            return self.string("string")
        except ModelError:
            return None
        finally:
            self.pos = pos

    def boolean(self, what: str) -> bool:
        start = self.pos
        ch = self._control(what)
        if ch not in (0x30, 0x31):
            raise self.fail(what, f"a bool must be '0' or '1', found byte 0x{ch:02x}", start)
        return ch == 0x31

    def real(self, what: str) -> float:
        """A scalar float: (int64 mantissa, int16 exponent) meaning mantissa * 2**exponent."""
        start = self.pos
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail(
                what, "dlib's old ASCII float encoding is not supported (re-save the model)", start
            )
        mantissa = self.signed(f"{what} (mantissa)", 8)
        exponent = self.signed(f"{what} (exponent)", 2)
        if exponent == _EXP_INF:
            return math.inf
        if exponent == _EXP_NINF:
            return -math.inf
        if exponent == _EXP_NAN:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def tensor(self, what: str) -> FloatArray:
        """A resizable_tensor: version 2, (n, k, nr, nc), then little-endian float32 data."""
        start = self.pos
        version = self.signed(f"{what} (tensor version)", 4)
        if version != 2:
            raise self.fail(what, f"tensor version {version}, dlib writes 2", start)
        dims = tuple(self.signed(f"{what} (tensor dimension)") for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.fail(what, f"negative tensor dimensions {dims}", start)
        count = math.prod(dims)
        if count > _MAX_TENSOR_FLOATS:
            raise self.fail(what, f"implausible tensor dimensions {dims}", start)
        nbytes = 4 * count
        if self.pos + nbytes > len(self.data):
            raise self.fail(
                what,
                f"tensor {dims} needs {nbytes} bytes but only {len(self.data) - self.pos} remain "
                "(truncated?)",
                start,
            )
        arr = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += nbytes
        return arr.astype(np.float32).reshape(dims)  # a native-endian, writable copy

    def alias_shape(self, what: str) -> tuple[int, int, int, int]:
        """An alias_tensor: version 1 and four dimensions, no data."""
        start = self.pos
        version = self.signed(f"{what} (alias_tensor version)", 4)
        if version != 1:
            raise self.fail(what, f"alias_tensor version {version}, dlib writes 1", start)
        n, k, nr, nc = (self.signed(f"{what} (alias_tensor dimension)") for _ in range(4))
        if min(n, k, nr, nc) < 0:
            raise self.fail(what, f"negative alias_tensor dimensions {(n, k, nr, nc)}", start)
        return n, k, nr, nc


def _split(
    r: _Reader, flat: FloatArray, shapes: Mapping[str, tuple[int, ...]], what: str, start: int
) -> dict[str, FloatArray]:
    """Cut dlib's flat per-layer parameter tensor into named, shaped arrays (in order)."""
    values = flat.reshape(-1)
    need = sum(math.prod(s) for s in shapes.values())
    if need != values.size:
        raise r.fail(
            what,
            f"parameter tensor has {values.size} values but the layer's shapes "
            f"{shapes} need {need}",
            start,
        )
    out: dict[str, FloatArray] = {}
    at = 0
    for name, shape in shapes.items():
        n = math.prod(shape)
        out[name] = values[at : at + n].reshape(shape)
        at += n
    return out


def _multipliers(r: _Reader, what: str) -> dict[str, Scalar]:
    names = (
        "learning_rate_multiplier",
        "weight_decay_multiplier",
        "bias_learning_rate_multiplier",
        "bias_weight_decay_multiplier",
    )
    return {name: r.real(f"{what} {name}") for name in names}


def _read_con(r: _Reader, version: str, start: int) -> DlibLayer:
    what = f"{version} layer"
    flat = r.tensor(f"{what} params")
    attrs: dict[str, Scalar] = {
        "num_filters": r.signed(f"{what} num_filters"),
        "nr": r.signed(f"{what} nr"),
        "nc": r.signed(f"{what} nc"),
        "stride_y": r.signed(f"{what} stride_y"),
        "stride_x": r.signed(f"{what} stride_x"),
        "padding_y": r.signed(f"{what} padding_y"),
        "padding_x": r.signed(f"{what} padding_x"),
    }
    filters = r.alias_shape(f"{what} filters")
    biases = r.alias_shape(f"{what} biases")
    attrs.update(_multipliers(r, what))
    use_bias = True  # con_4 predates use_bias: it always had biases
    if version in ("con_5", "con_6"):
        use_bias = r.boolean(f"{what} use_bias")
    attrs["use_bias"] = use_bias
    attrs["use_relu"] = r.boolean(f"{what} use_relu") if version == "con_6" else False
    shapes: dict[str, tuple[int, ...]] = {"filters": filters}
    if use_bias:
        shapes["biases"] = (math.prod(biases),)
    if filters[0] != attrs["num_filters"]:
        raise r.fail(what, f"filters {filters} disagree with num_filters {attrs['num_filters']}")
    return DlibLayer("con", version, start, attrs, _split(r, flat, shapes, what, start))


def _read_fc(r: _Reader, version: str, start: int) -> DlibLayer:
    what = f"{version} layer"
    num_outputs = r.unsigned(f"{what} num_outputs")
    num_inputs = r.unsigned(f"{what} num_inputs")
    flat = r.tensor(f"{what} params")
    weights = r.alias_shape(f"{what} weights")
    biases = r.alias_shape(f"{what} biases")
    bias_mode = r.signed(f"{what} bias_mode", 4)  # 0: FC_HAS_BIAS, 1: FC_NO_BIAS
    attrs: dict[str, Scalar] = {
        "num_outputs": num_outputs,
        "num_inputs": num_inputs,
        "bias_mode": bias_mode,
    }
    attrs.update(_multipliers(r, what))
    use_bias = r.boolean(f"{what} use_bias") if version == "fc_3" else True
    use_bias = use_bias and bias_mode == 0
    attrs["use_bias"] = use_bias
    if weights[:2] != (num_inputs, num_outputs):
        raise r.fail(
            what, f"weights {weights} disagree with {num_inputs} inputs, {num_outputs} outputs"
        )
    shapes: dict[str, tuple[int, ...]] = {"weights": (num_inputs, num_outputs)}
    if use_bias:
        shapes["biases"] = (math.prod(biases),)
    return DlibLayer("fc", version, start, attrs, _split(r, flat, shapes, what, start))


def _read_affine(r: _Reader, version: str, start: int) -> DlibLayer:
    what = f"{version} layer"
    flat = r.tensor(f"{what} params")
    gamma = r.alias_shape(f"{what} gamma")
    beta = r.alias_shape(f"{what} beta")
    mode = r.signed(f"{what} mode", 4)  # 0: CONV_MODE (per channel), 1: FC_MODE (per element)
    disabled = r.boolean(f"{what} disabled") if version == "affine_2" else False
    shapes = {"gamma": gamma[1:], "beta": beta[1:]}
    params = _split(r, flat, shapes, what, start) if not disabled else {}
    return DlibLayer("affine", version, start, {"mode": mode, "disabled": disabled}, params)


def _read_bn(r: _Reader, version: str, start: int) -> DlibLayer:
    what = f"{version} layer"
    flat = r.tensor(f"{what} params")
    gamma = r.alias_shape(f"{what} gamma")
    beta = r.alias_shape(f"{what} beta")
    r.tensor(f"{what} means")  # batch statistics of the last training step: unused
    r.tensor(f"{what} invstds")
    running_means = r.tensor(f"{what} running_means")
    running_variances = r.tensor(f"{what} running_variances")
    attrs: dict[str, Scalar] = {
        "mode": 0 if version == "bn_con2" else 1,
        "num_updates": r.unsigned(f"{what} num_updates"),
        "running_stats_window_size": r.unsigned(f"{what} running_stats_window_size"),
    }
    attrs.update(_multipliers(r, what))
    attrs["eps"] = r.real(f"{what} eps")
    params = _split(r, flat, {"gamma": gamma[1:], "beta": beta[1:]}, what, start)
    params["running_means"] = running_means.reshape(gamma[1:])
    params["running_variances"] = running_variances.reshape(gamma[1:])
    return DlibLayer("bn", version, start, attrs, params)


def _read_pool(r: _Reader, version: str, start: int) -> DlibLayer:
    what = f"{version} layer"
    attrs: dict[str, Scalar] = {
        name: r.signed(f"{what} {name}")
        for name in ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
    }
    return DlibLayer(version.rsplit("_", 1)[0], version, start, attrs)


def _read_relu(r: _Reader, version: str, start: int) -> DlibLayer:
    disabled = r.boolean(f"{version} layer disabled") if version == "relu_2" else False
    return DlibLayer("relu", version, start, {"disabled": disabled})


def _read_add_prev(r: _Reader, version: str, start: int) -> DlibLayer:
    return DlibLayer("add_prev", version, start)


_LAYER_READERS = {
    "con_4": _read_con,
    "con_5": _read_con,
    "con_6": _read_con,
    "fc_2": _read_fc,
    "fc_3": _read_fc,
    "affine_": _read_affine,
    "affine_2": _read_affine,
    "bn_con2": _read_bn,
    "bn_fc2": _read_bn,
    "relu_": _read_relu,
    "relu_2": _read_relu,
    "add_prev_": _read_add_prev,
    "avg_pool_2": _read_pool,
    "max_pool_2": _read_pool,
}


def _read_details(r: _Reader) -> DlibLayer:
    start = r.pos
    version = r.string("a layer version string")
    reader = _LAYER_READERS.get(version)
    if reader is None:
        raise r.fail(
            "a layer version string",
            f"unsupported layer {version!r} (supported: {', '.join(sorted(_LAYER_READERS))})",
            start,
        )
    return reader(r, version, start)


def _read_input(r: _Reader) -> DlibInput:
    start = r.pos
    version = r.string("the input layer")
    if version not in ("input_rgb_image", "input_rgb_image_sized"):
        raise r.fail("the input layer", f"unsupported input layer {version!r}", start)
    avg = tuple(r.real(f"{version} {c} average") for c in ("red", "green", "blue"))
    rows = cols = None
    if version == "input_rgb_image_sized":
        rows = r.unsigned(f"{version} rows")
        cols = r.unsigned(f"{version} cols")
    return DlibInput(version, (avg[0], avg[1], avg[2]), rows, cols)


def _read_bookkeeping(r: _Reader, layer_version: int, over_input: bool) -> None:
    """The add_layer fields after the layer details: training state, normally empty when saved."""
    for name in ("this_layer_setup_called", "gradient_input_is_stale", "output_disabled"):
        r.boolean(f"add_layer {name}")
    r.tensor("add_layer x_grad")
    r.tensor("add_layer cached_output")
    if over_input:
        r.tensor("add_layer grad_final")
        if layer_version >= 3:
            r.unsigned("add_layer sample_expansion_factor", 4)
    elif layer_version == 2:
        r.tensor("add_layer params_grad")


def _read_loss(r: _Reader) -> tuple[str, dict[str, Scalar]]:
    start = r.pos
    version = r.signed("the loss layer version (a dlib DNN file starts with it)", 4)
    if version != 1:
        raise r.fail("the loss layer version 1", f"found {version}", start)
    start = r.pos
    name = r.peek_string()
    if name is None or not name.startswith("loss_"):
        raise r.fail(
            "a loss layer name such as 'loss_metric_2'",
            "this is not a dlib DNN network (is it a shape predictor or another dlib object?)",
            start,
        )
    r.string("the loss layer name")
    if name == "loss_metric_":
        return name, {"margin": 0.1, "distance_threshold": 0.75}  # dlib's old hard-coded values
    if name == "loss_metric_2":
        margin = r.real("loss_metric_2 margin")
        return name, {"margin": margin, "distance_threshold": r.real("loss_metric_2 dist_thresh")}
    raise r.fail("a supported loss layer", f"unsupported loss layer {name!r}", start)


def parse_dlib_network(data: bytes, source: str = "<bytes>") -> DlibNetwork:
    """Parse a serialised dlib network (the bytes of a .dat file).

    `source` names the data in error messages (normally the file path).
    """
    r = _Reader(data, source)
    loss, loss_attrs = _read_loss(r)

    # The chain of version numbers from the loss end down to the input layer.
    # Each entry: (version, offset); version 1 is a tag or skip marker (add_layer
    # is 2 in every dlib that writes tensors as version 2), 2/3 directly followed
    # by the input layer's name is the add_layer that wraps the input.
    chain: list[tuple[int, int]] = []
    while True:
        start = r.pos
        version = r.signed("a layer version number", 4)
        following = r.peek_string()
        if following is not None and following.startswith("input_"):
            if version not in (2, 3):
                raise r.fail(
                    "the add_layer over the input (version 2 or 3)",
                    f"found version {version}; only a computational layer directly over the "
                    "input is supported",
                    start,
                )
            bottom = (version, start)
            break
        if version not in (1, 2):
            raise r.fail("a layer version number (1 or 2)", f"found {version}", start)
        chain.append((version, start))
        if len(chain) > 100_000:
            raise r.fail("the input layer", "no input layer after 100000 layers", start)

    input_layer = _read_input(r)

    layers: list[DlibLayer] = [_read_details(r)]
    _read_bookkeeping(r, bottom[0], over_input=True)
    for version, start in reversed(chain):
        if version == 1:
            layers.append(DlibLayer("tag_or_skip", "", start))
        else:
            layers.append(_read_details(r))
            _read_bookkeeping(r, version, over_input=False)

    if r.pos != len(data):
        raise r.fail("the end of the file", f"{len(data) - r.pos} unexpected trailing bytes")
    return DlibNetwork(source, loss, loss_attrs, input_layer, tuple(layers))


def read_dlib_network(path: Path) -> DlibNetwork:
    """Read and parse a dlib network .dat file; ModelError if it is unreadable or not one."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"{path}: cannot read dlib model file: {e.strerror or e}") from e
    return parse_dlib_network(data, str(path))
