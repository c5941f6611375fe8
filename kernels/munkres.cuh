// Classic Munkres assignment with the choices of the `munkres` 1.x package, mirroring
// decode/munkres.py step for step (its docstring lists the rules). Serial: one thread
// solves one matrix of at most HHR_MAX_N x HHR_MAX_N; ties in the grouping cost are common and the
// scan orders below decide them, so they are kept exactly.
#pragma once
#include "common.cuh"

namespace hhr {

struct MunkresWork {
  double C[HHR_MAX_N * HHR_MAX_N];
  unsigned char star[HHR_MAX_N * HHR_MAX_N];
  unsigned char prime[HHR_MAX_N * HHR_MAX_N];
  unsigned char row_cov[HHR_MAX_N];
  unsigned char col_cov[HHR_MAX_N];
  int path_r[2 * HHR_MAX_N + 2];
  int path_c[2 * HHR_MAX_N + 2];
};

// Step 4's scan (see munkres.py _find_zero). Returns false when no uncovered zero exists.
HD inline bool munkres_find_zero(const MunkresWork& w, int n, int i0, int j0, int* ri, int* rj) {
  for (int s = 0; s < n; ++s) {
    int i = (i0 + s) % n;
    if (w.row_cov[i]) continue;
    bool any = false;
    for (int j = 0; j < n && !any; ++j) any = w.C[i * n + j] == 0.0 && !w.col_cov[j];
    if (!any) continue;
    // Cyclic scan from j0 keeping the last hit: the largest free column below j0, else the
    // largest free column.
    for (int j = j0 - 1; j >= 0; --j)
      if (w.C[i * n + j] == 0.0 && !w.col_cov[j]) { *ri = i; *rj = j; return true; }
    for (int j = n - 1; j >= 0; --j)
      if (w.C[i * n + j] == 0.0 && !w.col_cov[j]) { *ri = i; *rj = j; return true; }
  }
  return false;
}

// cost: rows x cols (row-major, double). Writes assign[r] = column of row r (< cols) or -1.
// Returns kOk or kUnsolvable.
HD inline int classic_munkres(const double* cost, int rows, int cols, int* assign, MunkresWork& w) {
  for (int r = 0; r < rows; ++r) assign[r] = -1;
  if (rows == 0 || cols == 0) return kOk;
  int n = rows > cols ? rows : cols;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      w.C[i * n + j] = (i < rows && j < cols) ? cost[i * cols + j] : 0.0;
  // Step 1: subtract each row's minimum.
  for (int i = 0; i < n; ++i) {
    double m = w.C[i * n];
    for (int j = 1; j < n; ++j) m = w.C[i * n + j] < m ? w.C[i * n + j] : m;
    for (int j = 0; j < n; ++j) w.C[i * n + j] -= m;
  }
  for (int i = 0; i < n * n; ++i) w.star[i] = w.prime[i] = 0;
  for (int i = 0; i < n; ++i) w.row_cov[i] = w.col_cov[i] = 0;
  // Step 2: star the first zero of each row whose column has no star yet.
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      if (w.C[i * n + j] == 0.0 && !w.col_cov[j]) { w.star[i * n + j] = 1; w.col_cov[j] = 1; break; }
  for (int j = 0; j < n; ++j) w.col_cov[j] = 0;
  // With finite costs step 6 runs at most n times between two augmentations (each run makes an
  // uncovered zero: the minimum minus itself), so n * (n + 1) bounds a whole solve. Non-finite
  // costs (NaN / inf tags) can cycle forever, in the NumPy decoder as here: past the bound the
  // matrix is reported unsolvable instead of hanging the GPU.
  long step6_left = 2L * n * (n + 1) + 8;
  while (true) {
    // Step 3
    int covered = 0;
    for (int j = 0; j < n; ++j) {
      w.col_cov[j] = 0;
      for (int i = 0; i < n; ++i) w.col_cov[j] |= w.star[i * n + j];
      covered += w.col_cov[j];
    }
    if (covered >= n) break;
    int row = 0, col = 0;
    while (true) {  // steps 4 and 6
      int r, c;
      if (!munkres_find_zero(w, n, row, col, &r, &c)) {
        // Step 6
        double m = INFINITY;
        bool any_row = false, all_row = true, any_col = false, all_col = true;
        for (int i = 0; i < n; ++i) {
          any_row |= w.row_cov[i] != 0; all_row &= w.row_cov[i] != 0;
          any_col |= w.col_cov[i] != 0; all_col &= w.col_cov[i] != 0;
        }
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < n; ++j)
            if (!w.row_cov[i] && !w.col_cov[j] && w.C[i * n + j] < m) m = w.C[i * n + j];
        if ((!any_row && all_col) || (all_row && !any_col) || --step6_left < 0) return kUnsolvable;
        for (int i = 0; i < n; ++i)
          if (w.row_cov[i])
            for (int j = 0; j < n; ++j) w.C[i * n + j] += m;
        for (int j = 0; j < n; ++j)
          if (!w.col_cov[j])
            for (int i = 0; i < n; ++i) w.C[i * n + j] -= m;
        row = col = 0;
        continue;
      }
      w.prime[r * n + c] = 1;
      int star_col = -1;
      for (int j = 0; j < n; ++j) if (w.star[r * n + j]) { star_col = j; break; }
      if (star_col >= 0) {
        row = r; col = star_col;
        w.row_cov[r] = 1;
        w.col_cov[star_col] = 0;
        continue;
      }
      row = r; col = c;
      break;
    }
    // Step 5: augmenting path prime, star, prime, ...
    int len = 0;
    w.path_r[len] = row; w.path_c[len] = col; ++len;
    while (true) {
      int cl = w.path_c[len - 1], rs = -1;
      for (int i = 0; i < n; ++i) if (w.star[i * n + cl]) { rs = i; break; }
      if (rs < 0) break;
      w.path_r[len] = rs; w.path_c[len] = cl; ++len;
      int cp = -1;
      for (int j = 0; j < n; ++j) if (w.prime[rs * n + j]) { cp = j; break; }
      w.path_r[len] = rs; w.path_c[len] = cp; ++len;
    }
    for (int k = 0; k < len; ++k) w.star[w.path_r[k] * n + w.path_c[k]] ^= 1;
    for (int i = 0; i < n * n; ++i) w.prime[i] = 0;
    for (int i = 0; i < n; ++i) w.row_cov[i] = w.col_cov[i] = 0;
  }
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      if (w.star[r * n + c]) { assign[r] = c; break; }
  return kOk;
}

}  // namespace hhr
