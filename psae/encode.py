"""Encoding and decoding with a fitted :class:`~psae.SparseAutoencoder`: one matrix multiply and
the code layer (or the output activation), batch by batch.

Codes are ``H = f(X W1ᵀ + b1)`` (eq. 2) and reconstructions ``Y = g(H W2ᵀ + b2)``; where the fit
chose an inference threshold, codes at or under it are exact zeros (:class:`Trimmed`). A model
with a pre-encoder bias ``b_pre`` stores it folded, ``b1 − W1 b_pre``; its rows are centred
before the product all the same, as training centred them, because a bf16 product's rounding
grows with the size of its operands.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from .classifier import SPARSE_BELOW
from .errors import ParameterError
from .params import resolve_device
from .training.network import Activation
from .training.precision import resolve_precision

__all__ = ["TRANSFORM_BATCH", "TRANSFORM_FLOATS", "Trimmed", "batch_rows", "code_layer", "apply",
           "transform", "sparse_transform", "inverse_transform", "score"]

TRANSFORM_BATCH = 8192
"""Rows per batch at most."""
TRANSFORM_FLOATS = 2 ** 23
"""Entries per batch of the wider side (input or output) at most, so a wide layer takes fewer
rows at a time and a batch's tensors stay tens of MB whatever the width."""


class Trimmed(torch.nn.Module):
    """A fitted code layer followed by the inference threshold: |h| ≤ θ becomes 0."""

    def __init__(self, code: torch.nn.Module, theta: float):
        super().__init__()
        self.code, self.theta = code, float(theta)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        h = self.code(a)
        return h.masked_fill_(h.abs() <= self.theta, 0.0)


def code_layer(est) -> torch.nn.Module:
    """The fitted code layer, in inference mode (BatchTopK's threshold, TopK's encode_k)."""
    code = est._code_layer(est._settings())
    state = getattr(est, "code_state_", None) or {}
    if state:
        code.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    return code.eval()


def batch_rows(*widths: int) -> int:
    """Rows per batch for tensors of these widths (:data:`TRANSFORM_FLOATS`)."""
    return max(1, min(TRANSFORM_BATCH, TRANSFORM_FLOATS // max(1, *widths)))


def apply(est, X, weight, bias, post, out=None, centre=None) -> np.ndarray:
    """``post(X Wᵀ + b)`` batch by batch, into ``out`` (allocated when None); float32 input
    multiplies in ``est``'s precision, float64 input in float64. With ``centre`` (a pre-encoder
    bias ``c``, folded into ``b``) the product is taken as ``(X − c) Wᵀ + (b + W c)``, the same
    map rounded as training rounded it."""
    n, width = X.shape[0], np.shape(weight)[0]
    if out is None:
        out = np.empty((n, width), dtype=np.float64 if _is_float64(X) else np.float32)
    elif out.shape != (n, width):
        raise ParameterError(f"out has shape {out.shape}, expected {(n, width)}")
    for s, block in _blocks(est, X, weight, bias, post, centre):
        out[s:s + block.shape[0]] = block.cpu().numpy()
    return out


def _is_float64(X) -> bool:
    given = np.dtype(getattr(X, "dtype", np.float32))
    return given.kind == "f" and given.itemsize == 8  # either byte order (big-endian != f8)


def _blocks(est, X, weight, bias, post, centre=None) -> Iterator[tuple[int, torch.Tensor]]:
    """:func:`apply`'s batches: each one's first row and ``post(X Wᵀ + b)`` on it."""
    device = resolve_device(est.device)
    dtype = torch.float64 if _is_float64(X) else torch.float32
    bf16 = dtype == torch.float32 and resolve_precision(
        est.precision, device, warn=False, size=weight.size) == "bf16"
    W = torch.as_tensor(weight).to(device=device, dtype=dtype)  # no copy where it is already
    b = torch.as_tensor(bias).to(device=device, dtype=dtype)
    if centre is not None:  # b + W c once per call, in the input's precision
        c = torch.as_tensor(np.asarray(centre)).to(device=device, dtype=dtype)
        b = b + torch.mv(W, c)
    if bf16:
        W = W.to(torch.bfloat16)
    post = post.to(device=device, dtype=dtype)  # a code layer's thresholds, in X's dtype
    batch = batch_rows(*W.shape)
    with torch.inference_mode():
        for s in range(0, X.shape[0], batch):
            rows = np.ascontiguousarray(X[s:s + batch])  # views may run backwards
            if not rows.dtype.isnative:  # a big-endian .npy: torch takes native order only
                rows = rows.astype(rows.dtype.newbyteorder("="))
            if not rows.flags.writeable:
                rows = rows.copy()
            xb = torch.from_numpy(rows).to(device=device, dtype=dtype)
            if centre is not None:
                xb = xb - c
            xb = xb.to(W.dtype)
            a = torch.mm(xb, W.t()).float().add_(b) if bf16 else torch.addmm(b, xb, W.t())
            yield s, post(a)


def _encoder(est, raw: bool = False) -> tuple[torch.nn.Module, np.ndarray | None]:
    """The code layer the encoder's product goes through (trimmed at the inference threshold
    unless ``raw``) and the pre-encoder bias the rows are centred on (None without one)."""
    code = code_layer(est)
    theta = getattr(est, "inference_threshold_", None)
    if theta is not None and not raw:
        code = Trimmed(code, theta)
    return code, (est.decoder_bias_ if est.mechanism.pre_bias else None)


def transform(est, X, out=None, raw: bool = False) -> np.ndarray:
    """Codes of the checked ``X`` (eq. 2), trimmed at the inference threshold unless ``raw``."""
    code, centre = _encoder(est, raw)
    return apply(est, X, est.encoder_weight_, est.encoder_bias_, code, out, centre)


def sparse_transform(est, X) -> sp.csr_matrix | np.ndarray:
    """:func:`transform`'s codes as a CSR matrix, built batch by batch, where the first batch
    is under :data:`psae.classifier.SPARSE_BELOW` non-zero, the CA classifier's sparse path
    (else as :func:`transform` gives them): a sparse code's dense array is mostly zeros to
    allocate, scan and convert again (60,000 × 1,000 MNIST codes: 240 MB for 1.5 M non-zeros).
    The classifier checks the whole matrix again."""
    code, centre = _encoder(est)
    parts, out = [], None
    for s, block in _blocks(est, X, est.encoder_weight_, est.encoder_bias_, code, centre):
        block = block.cpu().numpy()
        if s == 0 and np.count_nonzero(block) >= SPARSE_BELOW * block.size:  # dense from here
            out = np.empty((X.shape[0], block.shape[1]), dtype=block.dtype)
        if out is not None:
            out[s:s + block.shape[0]] = block
        else:
            parts.append(sp.csr_matrix(block))
    return out if out is not None else sp.vstack(parts, format="csr")


def inverse_transform(est, H) -> np.ndarray:
    """Reconstructions ``g(H W2ᵀ + b2)`` of the checked codes ``H``."""
    return apply(est, H, est.decoder_weight_, est.decoder_bias_, Activation(est._decoder))


def score(est, X) -> float:
    """Negative mean reconstruction error (eq. 13) of the checked ``X``, batch by batch through
    :func:`transform` and :func:`inverse_transform` (not the estimator's public methods, which
    return what ``set_output`` asks and check feature names again): the codes ``transform``
    gives these rows (float32 rows in ``est``'s precision), the error summed in float64."""
    total = 0.0
    batch = batch_rows(X.shape[1], est.n_components)
    for s in range(0, X.shape[0], batch):
        xb = np.asarray(X[s:s + batch])
        if xb.dtype not in (np.float32, np.float64):
            xb = xb.astype(np.float64)
        x_hat = inverse_transform(est, transform(est, xb))
        total += float(np.sum((xb.astype(np.float64) - x_hat) ** 2))
    return -total / (X.shape[0] * X.shape[1])
