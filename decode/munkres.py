"""Assignment by the classic Munkres steps, in NumPy, making the same choices as ``munkres`` 1.x.

Why not any optimal solver: the grouping cost is ``round(distance) * 100 - value``, so many
assignments tie on total cost, and the one the solver picks decides who gets which joint. The
official numbers were made with the ``munkres`` package 1.x (1.0.12 to 1.1.4, identical results);
scipy and munkres 3.x pick differently in 9 of the 20 reference cases. This module follows the
package's steps 1-6 in the same order, with the same scan orders, and the same float64 arithmetic on
every cell (including ``(c + m) - m`` on covered rows of uncovered columns, which need not give
back ``c``), so its choices are the package's. Only the O(n^2) scans are vectorised.

Step rules a mirror (e.g. a CUDA kernel) must keep, for the padded n x n matrix C:

1. Subtract each row's minimum from that row (no column reduction).
2. For rows i = 0..n-1 in order: star the first zero (lowest j) whose column holds no star yet.
3. Cover every column holding a star; if n columns are covered, stop.
4. Scan for an uncovered zero, starting at (row, col) = (0, 0) on each entry from step 6 and, after
   a row gets covered, at (that row, the column of its star). Rows are scanned cyclically from the
   start row and the first row holding an uncovered zero is taken; inside that row the columns are
   scanned cyclically from the start column and the *last* uncovered zero of that scan is taken.
   Prime it. If its row holds a star (first star by column), cover the row, uncover the star's
   column and go on scanning; else go to step 5. With no uncovered zero left, go to step 6.
5. From the prime, alternate: the star in its column (first by row), the prime in that star's row
   (first by column), until a column without a star. Unstar the stars, star the primes, erase all
   primes and covers; go to step 3.
6. m = min of uncovered cells. Add m to every cell of a covered row, then subtract m from every
   cell of an uncovered column (both, in this order, for a covered row's uncovered cells). Step 4.

A non-square input is padded with zeros to max(rows, cols) square (extra rows or extra columns),
as the package's ``pad_matrix`` does for list input; only pairs inside the input are returned.
"""

from __future__ import annotations

import numpy as np


class UnsolvableMatrix(ValueError):
    """Step 6 would change nothing (the package raises its own UnsolvableMatrix there)."""


def _first(mask: np.ndarray) -> int:
    """Index of the first True of a 1-D bool array, or -1."""
    if mask.size == 0:
        return -1
    i = int(mask.argmax())
    return i if mask[i] else -1


def _find_zero(
    zero: np.ndarray, row_cov: np.ndarray, col_cov: np.ndarray, i0: int, j0: int
) -> tuple[int, int]:
    """Step 4's scan: the first row (cyclically from i0) holding an uncovered zero, and in it the
    last uncovered zero of a cyclic column scan from j0. Returns (-1, -1) when there is none."""
    free = zero & ~col_cov[None, :]
    free[row_cov] = False
    rows = free.any(axis=1)
    i = _first(rows[i0:])
    if i >= 0:
        i += i0
    else:
        i = _first(rows[:i0])
        if i < 0:
            return -1, -1
    # The scan visits j0..n-1 then 0..j0-1 and keeps the last hit: the largest column below j0 if
    # any, else the largest column overall.
    row = free[i]
    j = _first(row[j0 - 1 :: -1]) if j0 > 0 else -1
    if j >= 0:
        return i, j0 - 1 - j
    return i, row.size - 1 - _first(row[::-1])


def classic_munkres(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost assignment with munkres 1.x's tie choices.

    cost: (R, C) float (any real values; float64 arithmetic is used). Returns (K, 2) int64 pairs
    [row, col], sorted by row, K = min(R, C) for a non-empty input, only pairs with row < R and
    col < C (padding pairs dropped). An empty input gives (0, 2).
    """
    c_in = np.asarray(cost, dtype=np.float64)
    if c_in.ndim != 2:
        raise ValueError(f"cost must be 2-D, got shape {c_in.shape}")
    rows, cols = c_in.shape
    if rows == 0 or cols == 0:
        return np.zeros((0, 2), dtype=np.int64)
    n = max(rows, cols)
    C = np.zeros((n, n), dtype=np.float64)
    C[:rows, :cols] = c_in

    # Step 1
    C -= C.min(axis=1, keepdims=True)

    star = np.zeros((n, n), dtype=bool)
    prime = np.zeros((n, n), dtype=bool)
    row_cov = np.zeros(n, dtype=bool)
    col_cov = np.zeros(n, dtype=bool)

    # Step 2
    zero = C == 0
    first_zero = zero.argmax(axis=1)  # every row has a zero after step 1
    if np.unique(first_zero).size == n:
        # No two rows compete for a column, so the greedy scan stars each row's first zero.
        star[np.arange(n), first_zero] = True
    else:
        for i in range(n):
            j = _first(zero[i] & ~col_cov)
            if j >= 0:
                star[i, j] = True
                col_cov[j] = True
        col_cov[:] = False

    # Finite costs need at most n (n + 1) step-6 passes; NaN / inf costs can cycle forever (the
    # package then never returns). Same cap as kernels/munkres.cuh.
    step6_left = 2 * n * (n + 1) + 8
    while True:
        # Step 3
        col_cov = star.any(axis=0)
        if int(col_cov.sum()) >= n:
            break
        # Steps 4 and 6 until step 4 finds a prime without a star in its row.
        row, col = 0, 0
        while True:
            row, col = _find_zero(zero, row_cov, col_cov, row, col)
            if row < 0:
                # Step 6
                unc = ~row_cov[:, None] & ~col_cov[None, :]
                m = C[unc].min()
                step6_left -= 1
                if not row_cov.any() and col_cov.all() or row_cov.all() and not col_cov.any():
                    raise UnsolvableMatrix("Matrix cannot be solved!")
                if step6_left < 0:
                    raise UnsolvableMatrix("no assignment after the step-6 pass limit (NaN or inf costs?)")
                C[row_cov] += m
                C[:, ~col_cov] -= m
                zero = C == 0
                row, col = 0, 0
                continue
            prime[row, col] = True
            star_col = _first(star[row])
            if star_col >= 0:
                col = star_col
                row_cov[row] = True
                col_cov[col] = False
                continue
            break
        # Step 5
        path_r = [row]
        path_c = [col]
        while True:
            r = _first(star[:, path_c[-1]])
            if r < 0:
                break
            path_r.append(r)
            path_c.append(path_c[-1])
            c = _first(prime[r])
            path_r.append(r)
            path_c.append(c)
        # Path cells alternate prime, star, prime ...: toggling stars them / unstars them.
        star[path_r, path_c] = ~star[path_r, path_c]
        prime[:] = False
        row_cov[:] = False
        col_cov[:] = False

    r, c = np.nonzero(star[:rows, :cols])
    return np.stack([r, c], axis=1).astype(np.int64)
