"""A strict walk over a baseline JPEG's entropy-coded data: the integrity check JPEG itself lacks.

Why: a JPEG has no checksum, and libjpeg (behind Pillow, OpenCV and torchvision) conceals damage: a
bit flipped in the compressed data still decodes, into a partly wrong picture, and Pillow reports
nothing (measured on 598 bit-flipped photos that Pillow decoded: libjpeg itself warned on 97, Pillow
on none). Huffman streams resynchronise after a flip, so the damage shows only to a decoder that holds
the stream to the letter: every code in its tables, no coefficient past the 64th, each restart
interval and the scan ending exactly where its marker is, padded with one-bits. This module does that
walk (no inverse DCT, no pixels) and names the first violation. It covers baseline and extended
sequential Huffman JPEGs (SOF0/SOF1), which is what cameras, phones and scanners write; other kinds
(progressive, arithmetic, lossless) are not checked (:func:`jpeg_problem` returns None for them).
It costs about a second per megapixel in pure Python, so callers bound it (``max_pixels``).
"""

from __future__ import annotations

import re
import struct

_RST = re.compile(rb"\xff[\xd0-\xd7]")
_PEEK = 9
# Dequantised DCT coefficients of 8-bit samples lie within about +-1024 (T.81 A.3.3); a little slack
# for encoders' rounding.
_MAX_COEF = 1100


class _Bad(Exception):
    """The first violation found, as a person would read it."""


_Table = tuple[dict[int, tuple[int, int]], list[tuple[int, int, int, int]]]


def _table(counts: bytes, symbols: bytes) -> _Table:
    """A lookup on the next 9 bits for short codes, and (length, first code, count, first index) for longer ones."""
    fast: dict[int, tuple[int, int]] = {}
    slow: list[tuple[int, int, int, int]] = []
    code, index = 0, 0
    for length in range(1, 17):
        n = counts[length - 1]
        if length <= _PEEK:
            for j in range(n):
                first = (code + j) << (_PEEK - length)
                for fill in range(1 << (_PEEK - length)):
                    fast[first + fill] = (length, symbols[index + j])
        elif n:
            slow.append((length, code, n, index))
        code = (code + n) << 1
        index += n
    return fast, slow


class _Bits:
    """MSB-first bit reader over one restart interval's unstuffed bytes."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.acc, self.n = data, 0, 0, 0

    def fill(self, want: int) -> None:
        while self.n < want:
            if self.pos < len(self.data):
                self.acc = (self.acc << 8) | self.data[self.pos]
                self.pos += 1
            else:  # past the end: libjpeg pads with zeros and warns; so do we, and it is checked below
                self.acc <<= 8
                self.pos += 1
            self.n += 8

    def bits(self, k: int) -> int:
        if k == 0:
            return 0
        self.fill(k)
        self.n -= k
        value = (self.acc >> self.n) & ((1 << k) - 1)
        self.acc &= (1 << self.n) - 1
        return value

    def symbol(self, table: _Table, symbols: bytes) -> int:
        fast, slow = table
        self.fill(16)
        peek = (self.acc >> (self.n - _PEEK)) & ((1 << _PEEK) - 1)
        hit = fast.get(peek)
        if hit is not None:
            self.n -= hit[0]
            self.acc &= (1 << self.n) - 1
            return hit[1]
        for length, first, count, index in slow:
            code = (self.acc >> (self.n - length)) & ((1 << length) - 1)
            if first <= code < first + count:
                self.n -= length
                self.acc &= (1 << self.n) - 1
                return symbols[index + code - first]
        raise _Bad("a Huffman code that is not in the image's tables")

    def end_ok(self) -> bool:
        """Whether the interval ended within its last byte, the rest of that byte being one-bits.

        The reader looks ahead (up to 16 bits, zeros past the end), so the unread real bits are those
        still held minus the look-ahead beyond the data.
        """
        beyond = max(0, self.pos - len(self.data))
        left = self.n - 8 * beyond
        if not 0 <= left < 8:
            return False
        return (self.acc >> (8 * beyond)) == (1 << left) - 1


def _extend(value: int, size: int) -> int:
    """JPEG's signed magnitude: ``size`` bits read as ``value`` (T.81 F.2.2.1)."""
    return value if size == 0 or value >= 1 << (size - 1) else value - (1 << size) + 1


def _quant_tables(all_segments: bytes) -> dict[int, list[int]]:
    """Every DQT table (in zig-zag order) of the header, by id: a file may hold several DQT segments."""
    tables: dict[int, list[int]] = {}
    pos = 2
    while pos + 4 <= len(all_segments) and all_segments[pos] == 0xFF:
        marker = all_segments[pos + 1]
        (length,) = struct.unpack_from(">H", all_segments, pos + 2)
        if marker == 0xDB:
            body, i = all_segments[pos + 4:pos + 2 + length], 0
            while i < len(body):
                precision, tid = body[i] >> 4, body[i] & 15
                width = 2 if precision else 1
                raw = body[i + 1:i + 1 + 64 * width]
                tables[tid] = list(struct.unpack(">64H", raw)) if width == 2 else list(raw)
                i += 1 + 64 * width
        pos += 2 + length
    return tables


def _segments(data: bytes) -> tuple[dict[int, bytes], list[tuple[int, bytes]], int]:
    """Header segments by marker (DHT and DQT collected), and where the first scan's data starts."""
    if data[:2] != b"\xff\xd8":
        raise _Bad("no JPEG start marker")
    pos = 2
    heads: dict[int, bytes] = {}
    tables: list[tuple[int, bytes]] = []
    while True:
        while pos < len(data) and data[pos] == 0xFF and pos + 1 < len(data) and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise _Bad("the header ends before the image data")
        marker = data[pos + 1]
        (length,) = struct.unpack_from(">H", data, pos + 2)
        body = data[pos + 4:pos + 2 + length]
        if length < 2 or len(body) != length - 2:
            raise _Bad(f"a header segment (marker 0x{marker:02x}) runs past the end of the file")
        if marker == 0xC4:
            tables.append((marker, body))
        else:
            heads.setdefault(marker, body)
        pos += 2 + length
        if marker == 0xDA:
            return heads, tables, pos


def jpeg_problem(data: bytes, max_pixels: int = 4_000_000) -> str | None:
    """The first way ``data`` breaks its own entropy coding, or None (intact, or a kind not checked).

    Images over ``max_pixels`` are not walked (None): the walk is pure Python.
    """
    try:
        heads, dht, pos = _segments(data)
        sof = heads.get(0xC0) or heads.get(0xC1)
        if sof is None or any(m in heads for m in (0xC2, 0xC3, 0xC9, 0xCA, 0xCB)):
            return None
        _, height, width, ncomp = struct.unpack_from(">BHHB", sof, 0)
        if height * width > max_pixels or height == 0:
            return None
        comps = {sof[6 + 3 * i]: (sof[7 + 3 * i] >> 4, sof[7 + 3 * i] & 15) for i in range(ncomp)}
        huff: dict[tuple[int, int], tuple[_Table, bytes]] = {}
        for _, body in dht:
            i = 0
            while i < len(body):
                tc, th = body[i] >> 4, body[i] & 15
                counts = body[i + 1:i + 17]
                total = sum(counts)
                symbols = body[i + 17:i + 17 + total]
                huff[(tc, th)] = (_table(counts, symbols), symbols)
                i += 17 + total
        restart = struct.unpack(">H", heads[0xDD][:2])[0] if 0xDD in heads else 0
        sos = heads[0xDA]
        order = [(sos[1 + 2 * i], sos[2 + 2 * i] >> 4, sos[2 + 2 * i] & 15) for i in range(sos[0])]
        hmax = max(h for h, _ in comps.values())
        vmax = max(v for _, v in comps.values())
        if len(order) == 1:
            cid = order[0][0]
            h, v = comps[cid]
            cw, ch = -(-width * h // hmax), -(-height * v // vmax)
            mcus, blocks = -(-cw // 8) * -(-ch // 8), [(order[0], 1)]
        else:
            mcus = -(-width // (8 * hmax)) * -(-height // (8 * vmax))
            blocks = [(c, comps[c[0]][0] * comps[c[0]][1]) for c in order]
        quant = _quant_tables(data[:pos])
        plan = [(huff[(0, td)], huff[(1, ta)], n, quant[sof[8 + 3 * list(comps).index(cid)]], cid)
                for (cid, td, ta), n in blocks]
        end = data.find(b"\xff", pos)
        while end != -1 and end + 1 < len(data) and (data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7):
            end = data.find(b"\xff", end + 2)
        if end == -1 or end + 1 >= len(data):
            raise _Bad("the image data has no end marker")
        intervals = _RST.split(data[pos:end])
        rsts = [m.group()[1] for m in _RST.finditer(data[pos:end])]
        if any(r != 0xD0 + (i % 8) for i, r in enumerate(rsts)):
            raise _Bad("its restart markers are out of sequence")
        per = restart or mcus
        if len(intervals) != -(-mcus // per):
            raise _Bad(f"it has {len(intervals)} restart intervals where its size needs {-(-mcus // per)}")
        for k, raw in enumerate(intervals):
            bits = _Bits(raw.replace(b"\xff\x00", b"\xff"))
            pred = dict.fromkeys(comps, 0)  # DC predictors restart with each interval
            for _ in range(min(per, mcus - k * per)):
                for (dc, dc_syms), (ac, ac_syms), n, q, cid in plan:
                    for _ in range(n):
                        s = bits.symbol(dc, dc_syms)
                        if s > 11:
                            raise _Bad("a DC difference wider than 11 bits")
                        pred[cid] += _extend(bits.bits(s), s)
                        if abs(pred[cid] * q[0]) > _MAX_COEF:
                            raise _Bad("a block's mean brightness outside what 8-bit samples can hold")
                        i = 1
                        while i < 64:
                            rs = bits.symbol(ac, ac_syms)
                            r, s = rs >> 4, rs & 15
                            if s == 0:
                                if r != 15:
                                    break
                                i += 16
                                continue
                            i += r
                            if i > 63 or s > 10:
                                raise _Bad("a coefficient past the 64th of its block")
                            if abs(_extend(bits.bits(s), s) * q[i]) > _MAX_COEF:
                                raise _Bad("a coefficient larger than 8-bit samples can produce")
                            i += 1
                        if i > 64:
                            raise _Bad("a run of zeros past the end of its block")
            if not bits.end_ok():
                raise _Bad("the compressed data does not end where its marker is (extra or missing bytes)")
        if data[end + 1] != 0xD9 and data[end + 1] not in (0xC4, 0xDA, 0xDD, 0xFE):
            raise _Bad(f"the image data is followed by marker 0x{data[end + 1]:02x}")
    except _Bad as why:
        return str(why)
    except (KeyError, IndexError, struct.error, ValueError, ZeroDivisionError):
        return "its header is inconsistent (a table, component or size it names is missing)"
    return None
