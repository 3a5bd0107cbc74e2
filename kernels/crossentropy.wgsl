// Fused softmax cross-entropy with ignore index (Hugging Face semantics), one workgroup per row.
//   logits (N,V), targets (N) i32 (-100 = ignored), losses (N), dlogits (N,V), scale (uniform)
//   forward:              losses[r] = logsumexp(logits[r]) − logits[r, targets[r]]      [writes =]
//                         (0 for an ignored row)
//   forward_grad:         as forward, and dlogits[r] = (softmax(logits[r]) − onehot) · scale  [writes =]
//                         (a 0 row for an ignored row)
//   forward_grad_inplace: as forward_grad with dlogits = logits (overwrites the logits)
// Numerically stable: max subtraction before exp. Each invocation loops 3·ceil(V/256) + 21 times, counting
// each loop's exit test as Mesa does (3 strided loops, 2 eight-level trees).
// A target outside [0, V) that is not -100 gives a NaN loss and gradient row (the wrapper rejects
// such targets on the CPU first; the NaN only guards against skipping that check).
// `logits` is declared read_write for every entry point so that the in-place entry can write it.
//
// Vocabulary chunks (the chunked LM head + loss, which never holds (N,V) logits): `logits` is a
// (N, W) scratch holding the logits of vocabulary columns [v0, v0 + W) of every row; its first
// `skip` columns were counted by an earlier chunk (the last chunk overlaps the one before it so
// that every chunk has the same width) and are left out here.
//   chunk_stats: the online log-sum-exp. stats (N,3) = [running max m, running Σ exp(x − m),
//                target logit]: the first chunk (flags bit 0) starts them, later ones rescale
//                s·exp(m_old − m_new) and add theirs, the chunk holding the target records its logit;
//                the last chunk (flags bit 1) writes losses[r] = m + log(s) − x_t (0 ignored,
//                NaN for a bad target).                        [stats updated in place; losses =]
//   chunk_grad:  logits chunk = (exp(x − m)/s − onehot)·scale, in place, with the final stats
//                (0 for ignored rows and for the skipped columns)  [writes = in place]

struct Params {
  N: u32,
  V: u32,
  scale: f32,
  W: u32,     // chunk entries: columns of the chunk scratch
  v0: u32,    // chunk entries: vocabulary id of the scratch's first column
  skip: u32,  // chunk entries: leading columns already counted by an earlier chunk
  flags: u32, // chunk_stats: bit 0 first chunk, bit 1 last chunk
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;

const WG = 256u;
const IGNORE = -100;
var<workgroup> red: array<f32, 256>;

fn reduce_max(lid: u32, x: f32) -> f32 {
  red[lid] = x;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier(); // everyone has read red[0] before it is reused
  return r;
}

fn reduce_sum(lid: u32, x: f32) -> f32 {
  red[lid] = x;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

// What a row needs: its max, Σ exp(x − max), the target logit, and whether the target is
// ignored or invalid. All reads of the row happen here, before any in-place write.
struct Row { base: u32, mx: f32, sum: f32, xt: f32, tgt: i32, ignored: bool, valid: bool }

fn row_stats(r: u32, lid: u32) -> Row {
  var row: Row;
  row.base = r * p.V;
  row.tgt = targets[r];
  row.ignored = row.tgt == IGNORE;
  row.valid = row.tgt >= 0 && u32(row.tgt) < p.V;
  row.xt = logits[row.base + select(0u, u32(row.tgt), row.valid)];
  var m = -0x1.fffffep+127f;
  for (var j = lid; j < p.V; j += WG) { m = max(m, logits[row.base + j]); }
  row.mx = reduce_max(lid, m);
  var s = 0.0;
  for (var j = lid; j < p.V; j += WG) { s += exp(logits[row.base + j] - row.mx); }
  row.sum = reduce_sum(lid, s);
  return row;
}

fn write_loss(r: u32, lid: u32, row: Row) {
  if (lid != 0u) { return; }
  let nan = bitcast<f32>(0x7fc00000u | (lid & 0u)); // a runtime NaN (a constant NaN does not compile)
  var loss = row.mx + log(row.sum) - row.xt;
  if (row.ignored) { loss = 0.0; } else if (!row.valid) { loss = nan; }
  losses[r] = loss;
}

// (softmax − onehot)·scale for element j of the row; 0 for an ignored row, NaN for an invalid one.
fn grad(row: Row, j: u32, x: f32) -> f32 {
  let nan = bitcast<f32>(0x7fc00000u | (j & 0u));
  let onehot = select(0.0, 1.0, i32(j) == row.tgt);
  var g = (exp(x - row.mx) / row.sum - onehot) * p.scale;
  if (row.ignored) { g = 0.0; } else if (!row.valid) { g = nan; }
  return g;
}

@compute @workgroup_size(256)
fn forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let r = wid.x + wid.y * nw.x;
  if (r >= p.N) { return; }
  let row = row_stats(r, lid);
  write_loss(r, lid, row);
}

@compute @workgroup_size(256)
fn forward_grad(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let r = wid.x + wid.y * nw.x;
  if (r >= p.N) { return; }
  let row = row_stats(r, lid);
  write_loss(r, lid, row);
  for (var j = lid; j < p.V; j += WG) {
    dlogits[row.base + j] = grad(row, j, logits[row.base + j]);
  }
}

@compute @workgroup_size(256)
fn forward_grad_inplace(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let r = wid.x + wid.y * nw.x;
  if (r >= p.N) { return; }
  let row = row_stats(r, lid); // ends with a barrier: every read of the row is done
  write_loss(r, lid, row);
  for (var j = lid; j < p.V; j += WG) {
    logits[row.base + j] = grad(row, j, logits[row.base + j]);
  }
}

// ---- rows variant (V a multiple of 4) -----------------------------------------------------------
// One invocation per row (flat index gid.x + gid.y·nw.x·64) with vec4 loads, no workgroup memory
// or barriers (what Mesa's CPU drivers run fastest). Same outputs as the entry points above; each
// invocation loops 3·(V/4 + 1) times at most (the wrapper checks it against Mesa's cap).
@group(0) @binding(5) var<storage, read_write> logits4: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> dlogits4: array<vec4f>;

struct Row4 { base: u32, mx: f32, sum: f32, loss: f32, tgt: i32, ignored: bool, valid: bool }

fn row_stats4(r: u32) -> Row4 {
  var row: Row4;
  let V4 = p.V / 4u;
  row.base = r * V4;
  row.tgt = targets[r];
  row.ignored = row.tgt == IGNORE;
  row.valid = row.tgt >= 0 && u32(row.tgt) < p.V;
  let t = select(0u, u32(row.tgt), row.valid);
  let xt = logits4[row.base + t / 4u][t % 4u];
  var m = vec4f(-0x1.fffffep+127f);
  for (var j = 0u; j < V4; j++) { m = max(m, logits4[row.base + j]); }
  row.mx = max(max(m.x, m.y), max(m.z, m.w));
  var s = vec4f(0.0);
  for (var j = 0u; j < V4; j++) { s += exp(logits4[row.base + j] - row.mx); }
  row.sum = (s.x + s.y) + (s.z + s.w);
  let nan = bitcast<f32>(0x7fc00000u | (r & 0u));
  var loss = row.mx + log(row.sum) - xt;
  if (row.ignored) { loss = 0.0; } else if (!row.valid) { loss = nan; }
  losses[r] = loss;
  return row;
}

fn grad4(row: Row4, j: u32, x: vec4f) -> vec4f {
  let nan = bitcast<f32>(0x7fc00000u | (j & 0u));
  let idx = vec4i(i32(4u * j)) + vec4i(0, 1, 2, 3);
  let onehot = select(vec4f(0.0), vec4f(1.0), idx == vec4i(row.tgt));
  var g = (exp(x - row.mx) / row.sum - onehot) * p.scale;
  if (row.ignored) { g = vec4f(0.0); } else if (!row.valid) { g = vec4f(nan); }
  return g;
}

@compute @workgroup_size(64)
fn forward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let r = gid.x + gid.y * nw.x * 64u;
  if (r >= p.N) { return; }
  _ = row_stats4(r);
}

@compute @workgroup_size(64)
fn forward_grad_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let r = gid.x + gid.y * nw.x * 64u;
  if (r >= p.N) { return; }
  let row = row_stats4(r);
  for (var j = 0u; j < p.V / 4u; j++) {
    dlogits4[row.base + j] = grad4(row, j, logits4[row.base + j]);
  }
}

@compute @workgroup_size(64)
fn forward_grad_inplace_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let r = gid.x + gid.y * nw.x * 64u;
  if (r >= p.N) { return; }
  let row = row_stats4(r);
  for (var j = 0u; j < p.V / 4u; j++) {
    logits4[row.base + j] = grad4(row, j, logits4[row.base + j]);
  }
}

// ---- vocabulary chunks (see the header), workgroup variant: one 256-wide workgroup per row ------
// chunk_stats loops 3·ceil(W/256) + 21 times per invocation (2 strided loops, 2 trees), chunk_grad
// ceil(W/256) + 1.
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;

// The loss of a row from its final stats (0 for an ignored row, NaN for a bad target).
fn chunk_loss(r: u32, mx: f32, sum: f32, xt: f32) -> f32 {
  let tgt = targets[r];
  let nan = bitcast<f32>(0x7fc00000u | (r & 0u));
  var loss = mx + log(sum) - xt;
  if (tgt == IGNORE) { loss = 0.0; } else if (!(tgt >= 0 && u32(tgt) < p.V)) { loss = nan; }
  return loss;
}

// The scratch column of the row's target when this chunk counts it, else none (0xffffffff).
fn target_column(tgt: i32) -> u32 {
  let t = u32(tgt) - p.v0;
  return select(0xffffffffu, t, tgt >= 0 && u32(tgt) >= p.v0 && t >= p.skip && t < p.W);
}

@compute @workgroup_size(256)
fn chunk_stats(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let r = wid.x + wid.y * nw.x;
  if (r >= p.N) { return; }
  let base = r * p.W;
  var m = -0x1.fffffep+127f;
  for (var j = p.skip + lid; j < p.W; j += WG) { m = max(m, logits[base + j]); }
  let mc = reduce_max(lid, m);
  // Earlier chunks' stats are read by every lane before the barriers in reduce_sum; lane 0 writes
  // them after.
  var mOld = mc;
  var sOld = 0.0;
  var xt = 0.0;
  if ((p.flags & 1u) == 0u) {
    mOld = stats[3u * r];
    sOld = stats[3u * r + 1u];
    xt = stats[3u * r + 2u];
  }
  let mx = max(mOld, mc);
  var s = 0.0;
  for (var j = p.skip + lid; j < p.W; j += WG) { s += exp(logits[base + j] - mx); }
  let sum = sOld * exp(mOld - mx) + reduce_sum(lid, s);
  let t = target_column(targets[r]);
  if (t != 0xffffffffu) { xt = logits[base + t]; }
  if (lid == 0u) {
    stats[3u * r] = mx;
    stats[3u * r + 1u] = sum;
    stats[3u * r + 2u] = xt;
    if ((p.flags & 2u) != 0u) { losses[r] = chunk_loss(r, mx, sum, xt); }
  }
}

@compute @workgroup_size(256)
fn chunk_grad(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let r = wid.x + wid.y * nw.x;
  if (r >= p.N) { return; }
  let base = r * p.W;
  let mx = stats[3u * r];
  let sum = stats[3u * r + 1u];
  let tgt = targets[r];
  let t = target_column(tgt);
  let nan = bitcast<f32>(0x7fc00000u | (r & 0u));
  for (var j = lid; j < p.W; j += WG) {
    var g = (exp(logits[base + j] - mx) / sum - select(0.0, 1.0, j == t)) * p.scale;
    if (tgt == IGNORE || j < p.skip) { g = 0.0; } else if (!(tgt >= 0 && u32(tgt) < p.V)) { g = nan; }
    logits[base + j] = g;
  }
}

// ---- vocabulary chunks, rows variant: one invocation per row, vec4 loads (W a multiple of 4) ----
// The skipped columns are masked out by lane. chunk_stats_rows loops 2·(W/4 + 1) times,
// chunk_grad_rows W/4 + 1.

fn counted(j: u32) -> vec4<bool> {
  return vec4u(4u * j) + vec4u(0u, 1u, 2u, 3u) >= vec4u(p.skip);
}

@compute @workgroup_size(64)
fn chunk_stats_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let r = gid.x + gid.y * nw.x * 64u;
  if (r >= p.N) { return; }
  let W4 = p.W / 4u;
  let base = r * W4;
  let lowest = vec4f(-0x1.fffffep+127f);
  var m4 = lowest;
  for (var j = p.skip / 4u; j < W4; j++) {
    m4 = max(m4, select(lowest, logits4[base + j], counted(j)));
  }
  let mc = max(max(m4.x, m4.y), max(m4.z, m4.w));
  var mOld = mc;
  var sOld = 0.0;
  var xt = 0.0;
  if ((p.flags & 1u) == 0u) {
    mOld = stats[3u * r];
    sOld = stats[3u * r + 1u];
    xt = stats[3u * r + 2u];
  }
  let mx = max(mOld, mc);
  var s4 = vec4f(0.0);
  for (var j = p.skip / 4u; j < W4; j++) {
    s4 += select(vec4f(0.0), exp(logits4[base + j] - mx), counted(j));
  }
  let sum = sOld * exp(mOld - mx) + ((s4.x + s4.y) + (s4.z + s4.w));
  let t = target_column(targets[r]);
  if (t != 0xffffffffu) { xt = logits4[base + t / 4u][t % 4u]; }
  stats[3u * r] = mx;
  stats[3u * r + 1u] = sum;
  stats[3u * r + 2u] = xt;
  if ((p.flags & 2u) != 0u) { losses[r] = chunk_loss(r, mx, sum, xt); }
}

@compute @workgroup_size(64)
fn chunk_grad_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let r = gid.x + gid.y * nw.x * 64u;
  if (r >= p.N) { return; }
  let W4 = p.W / 4u;
  let base = r * W4;
  let mx = stats[3u * r];
  let sum = stats[3u * r + 1u];
  let tgt = targets[r];
  let t = target_column(tgt);
  let nan = bitcast<f32>(0x7fc00000u | (r & 0u));
  for (var j = 0u; j < W4; j++) {
    let idx = vec4u(4u * j) + vec4u(0u, 1u, 2u, 3u);
    let onehot = select(vec4f(0.0), vec4f(1.0), idx == vec4u(t));
    var g = (exp(logits4[base + j] - mx) / sum - onehot) * p.scale;
    if (tgt == IGNORE) { g = vec4f(0.0); } else if (!(tgt >= 0 && u32(tgt) < p.V)) { g = vec4f(nan); }
    logits4[base + j] = select(vec4f(0.0), g, counted(j));
  }
}
