"""Sliding-window helpers shared by convolution and pooling (xp-generic).

A window op visits each kernel offset (r, s) once: the input elements that
offset touches, over all output positions, form one strided view of the
padded input. Looping over the R*S offsets (never over pixels or the batch)
keeps every step a large vectorised array operation on numpy and cupy alike.
"""
from __future__ import annotations

from ..backend import get_array_module


def out_size(spatial, kernel, stride, padding, dilation=(1, 1)):
    """(OH, OW) for an input (H, W); padding is (top, bottom, left, right)."""
    (H, W), (R, S), (sh, sw), (dh, dw) = spatial, kernel, stride, dilation
    pt, pb, pl, pr = padding
    return ((H + pt + pb - (R - 1) * dh - 1) // sh + 1,
            (W + pl + pr - (S - 1) * dw - 1) // sw + 1)


def offset_view(a, r, s, stride, dilation, out_hw):
    """View of `a` (..., Hp, Wp): [..., i, j] -> a[..., i*sh + r*dh, j*sw + s*dw]."""
    (sh, sw), (dh, dw), (OH, OW) = stride, dilation, out_hw
    h0, w0 = r * dh, s * dw
    return a[..., h0:h0 + sh * (OH - 1) + 1:sh, w0:w0 + sw * (OW - 1) + 1:sw]


def pad(x, padding, value=0.0):
    """x (..., H, W) padded by (top, bottom, left, right) with a constant; x itself when no pad."""
    pt, pb, pl, pr = padding
    if not any(padding):
        return x
    xp = get_array_module(x)
    H, W = x.shape[-2:]
    out = xp.full(x.shape[:-2] + (H + pt + pb, W + pl + pr), value, dtype=x.dtype)
    out[..., pt:pt + H, pl:pl + W] = x
    return out


def crop(a, padding, spatial):
    """Inverse of pad: the (H, W) interior of a padded (..., Hp, Wp) array, C-contiguous."""
    pt, _, pl, _ = padding
    H, W = spatial
    if not any(padding):
        return a
    xp = get_array_module(a)
    return xp.ascontiguousarray(a[..., pt:pt + H, pl:pl + W])
