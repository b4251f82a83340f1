"""The header of a .npy file, read on its own: ``np.load`` allocates whatever a header declares
before reading any data, so the data set and features loaders check the declared array first."""
from __future__ import annotations

import tokenize

import numpy as np


def read_npy_header(f):
    """(shape, dtype) from the header at ``f``'s position, which is left at the data.

    ValueError says what is wrong: numpy parses the header as Python, so damage can surface as
    a SyntaxError or a TokenError, reported here as a ValueError too.
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        read_header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f".npy format version {version} is not supported")
        shape, _, dtype = read_header(f)
    except (ValueError, SyntaxError, tokenize.TokenError) as exc:
        raise ValueError(exc.args[0] if exc.args else str(exc)) from None
    return shape, dtype
