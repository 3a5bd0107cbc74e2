import assert from "node:assert/strict";
import {
  decodeBF16,
  decodeF16,
  encodeBF16,
  encodeF16,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  type TensorData,
  writeSafetensors,
} from "../../models/mod.ts";

const ascii = (s: string) => new TextEncoder().encode(s);

function u64le(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}

function f32le(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

function u16le(values: number[]): Uint8Array {
  return new Uint8Array(new Uint16Array(values).buffer);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A file written by hand: header length (default: the JSON's), JSON text, data bytes. */
function file(header: unknown, data: Uint8Array | number = 0, headerLen?: number): Uint8Array {
  const json = ascii(typeof header === "string" ? header : JSON.stringify(header));
  const bytes = typeof data === "number" ? new Uint8Array(data) : data;
  return concat(u64le(headerLen ?? json.length), json, bytes);
}

const t = (shape: number[], values: number[]): TensorData => ({
  shape,
  data: new Float32Array(values),
});

function rejects(bytes: Uint8Array, pattern: RegExp, name = "model.safetensors"): void {
  assert.throws(() => parseSafetensors(bytes, name), (e: Error) => {
    assert.match(e.message, new RegExp(`^Cannot read safetensors file ${name}: `));
    assert.match(e.message, pattern);
    return true;
  });
}

// Golden layouts. By the format (8-byte little-endian header length, compact JSON, data) and the
// Rust crate's `prepare()`: JSON keys in the order dtype, shape, data_offsets; header padded with
// spaces to a multiple of 8 so the data starts 8-byte aligned. The first JSON below is exactly 64
// bytes (no padding); the second, with a shorter name and one more dimension, is 65 bytes and gets
// 7 spaces; an empty file with metadata is 35 bytes + 5 spaces = 40. These lengths (64, 72, 40) and
// bytes are what the crate's own tests `test_serialization`, `test_serialization_forced_alignement`
// and `test_empty` expect from `serialize`, which the Python `save_file` calls.
Deno.test("`serializeSafetensors()` writes the bytes the Python library writes", () => {
  const values = [0, 1, 2, 3, 4, 5];
  const one = serializeSafetensors(new Map([["attn.0", t([1, 2, 3], values)]]));
  const json1 = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
  assert.equal(json1.length, 64);
  assert.deepEqual(one, concat(u64le(64), ascii(json1), f32le(values)));

  const two = serializeSafetensors(new Map([["attn0", t([1, 1, 2, 3], values)]]));
  const json2 = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
  assert.equal(json2.length, 65);
  assert.deepEqual(two, concat(u64le(72), ascii(json2 + " ".repeat(7)), f32le(values)));

  const empty = serializeSafetensors([], { metadata: { framework: "pt" } });
  assert.deepEqual(
    empty,
    concat(u64le(40), ascii('{"__metadata__":{"framework":"pt"}}' + "     ")),
  );
  assert.deepEqual(serializeSafetensors([]), concat(u64le(8), ascii("{}      ")));
});

Deno.test("`serializeSafetensors()` orders tensors by UTF-8 bytes of their names, packed from 0", () => {
  // JS objects would put "10" and "9" first (integer-like keys); UTF-16 order would put "\uffff"
  // after "😀" (a surrogate pair); Rust and Python compare bytes.
  const names = ["b", "10", "a.weight", "😀", "\uffff", "9", "A"];
  const bytes = serializeSafetensors(names.map((n, i) => [n, t([i + 1], Array(i + 1).fill(i))]));
  const st = parseSafetensors(bytes);
  assert.deepEqual(st.names(), ["10", "9", "A", "a.weight", "b", "\uffff", "😀"]);
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLen));
  assert.ok(header.indexOf('"10"') < header.indexOf('"9"'), "header order follows the data order");
  let end = 0;
  for (const name of st.names()) {
    const e = st.entry(name);
    assert.equal(e.begin, end, name);
    end = e.end;
  }
  for (const [i, n] of names.entries()) {
    assert.deepEqual(st.tensor(n), t([i + 1], Array(i + 1).fill(i)));
  }
});

Deno.test("`parseSafetensors()` round-trips F32 tensors, scalars, empty tensors and metadata", () => {
  const tensors = new Map<string, TensorData>([
    ["w", t([2, 3], [1.5, -2, 3e-39, Infinity, -0, 7])],
    ["scalar", t([], [42])],
    ["empty", t([0, 4], [])],
    ["nan", t([1], [NaN])],
  ]);
  const meta = { format: "pt", "__proto__": "kept as data", note: "ünïcode ✓" };
  const st = parseSafetensors(serializeSafetensors(tensors, { metadata: meta }), "rt.safetensors", {
    allowNonFinite: true, // Infinity and NaN round-trip bit-exactly when allowed
  });
  assert.equal(st.file, "rt.safetensors");
  assert.deepEqual({ ...st.metadata }, { ...meta });
  assert.equal(Object.getPrototypeOf(st.metadata), Object.prototype);
  for (const [name, want] of tensors) {
    const got = st.tensor(name);
    assert.deepEqual(got.shape, want.shape, name);
    assert.deepEqual(
      new Uint32Array(got.data.buffer),
      new Uint32Array(want.data.buffer),
      `${name}: bit-exact`,
    );
  }
  assert.equal(st.entry("w").dtype, "F32");
});

Deno.test("`parseSafetensors()` decodes F16 bit patterns exactly, including subnormals, inf and NaN", () => {
  const cases: [number, number][] = [
    [0x0000, 0],
    [0x8000, -0],
    [0x0001, 2 ** -24], // smallest subnormal
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x0400, 2 ** -14], // smallest normal
    [0x3c00, 1],
    [0x3c01, 1 + 2 ** -10],
    [0xc000, -2],
    [0x3555, 0.333251953125],
    [0x7bff, 65504], // largest finite
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ];
  const bits = [...cases.map(([b]) => b), 0x7e00, 0xfe01];
  const header = { x: { dtype: "F16", shape: [bits.length], data_offsets: [0, 2 * bits.length] } };
  const got = parseSafetensors(file(header, u16le(bits)), undefined, { allowNonFinite: true })
    .tensor("x").data;
  cases.forEach(([b, v], i) => assert.ok(Object.is(got[i], v), `0x${b.toString(16)}: ${got[i]}`));
  assert.ok(Number.isNaN(got[cases.length]) && Number.isNaN(got[cases.length + 1]), "NaNs");
});

Deno.test("`parseSafetensors()` decodes BF16 as the top half of a float32", () => {
  const cases: [number, number][] = [
    [0x3f80, 1],
    [0xc040, -3],
    [0x0001, 2 ** -133], // smallest subnormal
    [0x0080, 2 ** -126], // smallest normal
    [0x7f7f, 3.3895313892515355e38], // largest finite
    [0x7f80, Infinity],
    [0xff80, -Infinity],
    [0x8000, -0],
  ];
  const bits = [...cases.map(([b]) => b), 0x7fc0];
  const header = { x: { dtype: "BF16", shape: [3, 3], data_offsets: [0, 18] } };
  const got = parseSafetensors(file(header, u16le(bits)), undefined, { allowNonFinite: true })
    .tensor("x").data;
  cases.forEach(([b, v], i) => assert.ok(Object.is(got[i], v), `0x${b.toString(16)}: ${got[i]}`));
  assert.ok(Number.isNaN(got[8]));
  cases.forEach(([b, v]) => assert.ok(Object.is(decodeBF16(b), v)));
});

Deno.test("`encodeF16()` and `encodeBF16()` invert decoding for every bit pattern", () => {
  for (let b = 0; b < 65536; b++) {
    const h = decodeF16(b);
    if (Number.isNaN(h)) {
      assert.ok(Number.isNaN(decodeF16(encodeF16(h))), `f16 NaN 0x${b.toString(16)}`);
    } else assert.equal(encodeF16(h), b, `f16 0x${b.toString(16)}`);
    const f = decodeBF16(b);
    if (Number.isNaN(f)) {
      assert.ok(Number.isNaN(decodeBF16(encodeBF16(f))), `bf16 NaN 0x${b.toString(16)}`);
    } else assert.equal(encodeBF16(f), b, `bf16 0x${b.toString(16)}`);
  }
});

Deno.test("`encodeF16()` rounds float32 values to the nearest half, ties to even", () => {
  const exact: [number, number][] = [
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: even (1)
    [1 + 3 * 2 ** -11, 0x3c02], // tie: even (1 + 2^-9)
    [65519, 0x7bff],
    [65520, 0x7c00], // tie between 65504 and 65536 (overflow): even → Infinity
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [2 ** -25, 0x0000], // half the smallest subnormal: tie to even (0)
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between subnormals 1 and 2: even
    [2 ** -26, 0x0000],
    [-(2 ** -30), 0x8000],
  ];
  for (const [x, bits] of exact) assert.equal(encodeF16(x), bits, `${x}`);
  // Random float32 values across the half range: the result is a nearest half.
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 20000; i++) {
    const x = Math.fround((rand() - 0.5) * 2 ** Math.floor(rand() * 44 - 28));
    const h = encodeF16(x);
    const v = decodeF16(h);
    for (const n of [h - 1, h + 1]) {
      if ((n & 0x7fff) >= 0x7c00 || (n & 0x7fff) === 0x7fff) continue;
      const w = decodeF16(n);
      const closer = Math.abs(x - v) < Math.abs(x - w);
      const tieEven = Math.abs(x - v) === Math.abs(x - w) && (h & 1) === 0;
      assert.ok(closer || tieEven, `${x} → ${v} but ${w} is at least as close`);
    }
  }
});

Deno.test("`serializeSafetensors()` stores F16 and BF16 rounded to nearest even", () => {
  const values = [1, -2.5, 1 / 3, 65504, 70000, 2 ** -24, 1e-9, NaN, -Infinity];
  for (const dtype of ["F16", "BF16"] as const) {
    const bytes = serializeSafetensors(new Map([["v", t([9], values)]]), { dtype });
    const st = parseSafetensors(bytes, undefined, { allowNonFinite: true });
    assert.equal(st.entry("v").dtype, dtype);
    assert.deepEqual([st.entry("v").begin, st.entry("v").end], [0, 18]);
    const encode = dtype === "F16" ? encodeF16 : encodeBF16;
    const decode = dtype === "F16" ? decodeF16 : decodeBF16;
    assert.deepEqual(
      [...st.tensor("v").data].map(String),
      values.map((x) => String(decode(encode(x)))),
      dtype,
    );
  }
  assert.deepEqual(
    [
      ...parseSafetensors(
        serializeSafetensors([["v", t([3], [70000, 2 ** -24, 1e-9])]], { dtype: "F16" }),
        undefined,
        { allowNonFinite: true },
      ).tensor("v").data,
    ],
    [Infinity, 2 ** -24, 0],
  );
  assert.throws(
    () => serializeSafetensors([], { dtype: "I8" as "F16" }),
    /dtype "I8" is not one of F32, F16, BF16/,
  );
});

Deno.test("`parseSafetensors()` rejects truncated or oversized header lengths", () => {
  rejects(new Uint8Array(5), /it is 5 bytes long, shorter than the 8-byte header length/);
  rejects(
    concat(u64le(100_000_001), ascii("{}")),
    /header length 100000001 exceeds the 100000000-byte limit/,
  );
  rejects(concat(new Uint8Array(8).fill(0xff)), /header length 18446744073709551615 exceeds/);
  rejects(
    concat(u64le(20), ascii("{}")),
    /header length 20 runs past the end of the file \(10 bytes\)/,
  );
});

Deno.test("`parseSafetensors()` rejects headers that are not UTF-8 JSON objects", () => {
  rejects(concat(u64le(3), new Uint8Array([0x7b, 0xff, 0x7d])), /header is not valid UTF-8/);
  rejects(file("{'a': 1}"), /header is not valid JSON/);
  rejects(file("[]"), /header must be a JSON object, got an array/);
  rejects(file("null"), /header must be a JSON object, got null/);
  rejects(
    file({ __metadata__: { format: 1 } }),
    /"__metadata__" entry "format" must be a string, got a number/,
  );
  rejects(
    file({ __metadata__: ["pt"] }),
    /"__metadata__" must be an object of strings, got an array/,
  );
  assert.deepEqual(parseSafetensors(file({ __metadata__: null })).metadata, {});
});

Deno.test("`parseSafetensors()` rejects malformed tensor entries naming the tensor", () => {
  const entry = (e: unknown) => file({ "h.0.w": e }, 8);
  rejects(
    entry(3),
    /tensor "h\.0\.w" must be an object \{dtype, shape, data_offsets\}, got a number/,
  );
  rejects(entry({ shape: [2], data_offsets: [0, 8] }), /tensor "h\.0\.w" has no string "dtype"/);
  rejects(
    entry({ dtype: "F12", shape: [2], data_offsets: [0, 8] }),
    /tensor "h\.0\.w" has unsupported dtype "F12" \(known: BOOL,U8/,
  );
  rejects(
    entry({ dtype: "F32", shape: [2, -1], data_offsets: [0, 8] }),
    /tensor "h\.0\.w" "shape" must be an array of non-negative integers, got \[2,-1\]/,
  );
  rejects(
    entry({ dtype: "F32", shape: [1.5], data_offsets: [0, 8] }),
    /tensor "h\.0\.w" "shape" must/,
  );
  rejects(
    entry({ dtype: "F32", shape: "2", data_offsets: [0, 8] }),
    /tensor "h\.0\.w" "shape" must/,
  );
  rejects(
    entry({ dtype: "F32", shape: [2], data_offsets: [0] }),
    /tensor "h\.0\.w" "data_offsets" must be \[begin, end\] byte offsets, got \[0\]/,
  );
  rejects(
    entry({ dtype: "F32", shape: [2], data_offsets: [8, 0] }),
    /tensor "h\.0\.w" data_offsets \[8, 0\] end before they begin/,
  );
  // Unknown fields inside an entry are ignored, as serde does.
  const ok = parseSafetensors(entry({ dtype: "F32", shape: [2], data_offsets: [0, 8], extra: 1 }));
  assert.deepEqual(ok.names(), ["h.0.w"]);
});

Deno.test("`parseSafetensors()` rejects a span that does not match shape × dtype size, naming the tensor", () => {
  rejects(
    file({ w: { dtype: "F32", shape: [2, 3], data_offsets: [0, 20] } }, 20),
    /tensor "w" of dtype F32 and shape \[2,3\] needs 24 bytes but data_offsets \[0, 20\] span 20/,
  );
  rejects(
    file({ w: { dtype: "BF16", shape: [], data_offsets: [0, 4] } }, 4),
    /tensor "w" of dtype BF16 and shape \[\] needs 2 bytes/,
  );
  rejects(
    file({ w: { dtype: "F64", shape: [2 ** 40, 2 ** 20], data_offsets: [0, 8] } }, 8),
    /tensor "w" shape \[1099511627776,1048576\] is too large/,
  );
});

Deno.test("`parseSafetensors()` rejects overlapping offsets naming both tensors", () => {
  rejects(
    file({
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
    }, 12),
    /tensor "b" data_offsets \[4, 12\] overlap tensor "a"/,
  );
  rejects(
    file({
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    }, 8),
    /tensor "b" data_offsets \[0, 8\] overlap tensor "a"/,
  );
});

Deno.test("`parseSafetensors()` rejects holes in the data area naming the tensor after them", () => {
  rejects(
    file({
      a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
      b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
    }, 12),
    /tensor "b" data_offsets \[8, 12\] leave 4 unused bytes after "a" \(tensors must be contiguous\)/,
  );
  rejects(
    file({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, 8),
    /tensor "a" data_offsets \[4, 8\] leave 4 unused bytes at the start of the data/,
  );
});

Deno.test("`parseSafetensors()` requires the last tensor to end exactly at the end of the file", () => {
  const header = { a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } };
  rejects(
    file(header, 12),
    /tensor "a" ends at data offset 16, past the end of the data area \(12 bytes\)/,
  );
  rejects(
    file(header, 20),
    /4 bytes follow the last tensor "a" \(the data area must end with the last tensor\)/,
  );
  rejects(file({}, 3), /3 bytes follow the header/);
  // Offsets in any order in the JSON are fine: they are sorted first, as the Rust crate does.
  const st = parseSafetensors(file({
    z: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
    a: { dtype: "U8", shape: [4], data_offsets: [4, 8] },
  }, f32le([3, 0])));
  assert.deepEqual(st.names(), ["z", "a"]);
  assert.deepEqual([...st.bytes("a")], [0, 0, 0, 0]);
});

Deno.test("`Safetensors.tensor()` names the tensor when its dtype is not a float or it is missing", () => {
  const st = parseSafetensors(
    file({
      ids: { dtype: "I64", shape: [1], data_offsets: [0, 8] },
      d: { dtype: "F64", shape: [1], data_offsets: [8, 16] },
    }, concat(new Uint8Array(8), new Uint8Array(new Float64Array([0.1]).buffer))),
    "m.safetensors",
  );
  assert.throws(
    () => st.tensor("ids"),
    /Cannot decode tensor "ids" in file m\.safetensors: dtype I64 is not a float type \(supported: F32, F16, BF16, F64\)/,
  );
  assert.equal(st.tensor("d").data[0], Math.fround(0.1));
  assert.throws(() => st.tensor("nope"), /Cannot find tensor "nope" in file m\.safetensors/);
  assert.throws(
    () => parseSafetensors(new Uint8Array(2)),
    /^Error: Cannot read safetensors data: it is 2 bytes/,
  );
});

Deno.test("`serializeSafetensors()` rejects bad tensors naming them", () => {
  assert.throws(
    () => serializeSafetensors([["w", t([2, 2], [1, 2, 3])]]),
    /tensor "w" has shape \[2,2\] \(4 elements\) but 3 values/,
  );
  assert.throws(
    () => serializeSafetensors([["w", t([-1], [])]]),
    /tensor "w" has an invalid shape \[-1\]/,
  );
  assert.throws(
    () => serializeSafetensors([["w", t([1], [1])], ["w", t([1], [1])]]),
    /tensor "w" appears twice/,
  );
  assert.throws(
    () => serializeSafetensors([["__metadata__", t([1], [1])]]),
    /reserved name __metadata__/,
  );
  assert.throws(() => serializeSafetensors([["a\ud800", t([1], [1])]]), /lone surrogate/);
  assert.throws(
    () => serializeSafetensors([], { metadata: { n: 1 as unknown as string } }),
    /metadata "n" must be a well-formed string/,
  );
});

Deno.test("`writeSafetensors()` writes atomically and `readSafetensors()` names the file in errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/model.safetensors`;
    await Deno.writeTextFile(path, "old contents");
    const tensors = new Map([["w", t([2], [1, 2])]]);
    await writeSafetensors(path, tensors, { metadata: { format: "pt" } });
    const st = await readSafetensors(path);
    assert.equal(st.file, path);
    assert.deepEqual(st.tensor("w"), t([2], [1, 2]));
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), [
      "model.safetensors",
    ]);

    // A failed rename (the target is a non-empty folder) leaves no temporary file behind.
    await Deno.mkdir(`${dir}/taken`);
    await Deno.writeTextFile(`${dir}/taken/x`, "");
    await assert.rejects(writeSafetensors(`${dir}/taken`, tensors), (e: Error) => {
      assert.match(e.message, new RegExp(`^Cannot write ${dir}/taken: `));
      return true;
    });
    const left = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    assert.deepEqual(left, ["model.safetensors", "taken"]);

    await assert.rejects(
      writeSafetensors(`${dir}/no/such/folder/m.safetensors`, tensors),
      new RegExp(`^Error: Cannot write ${dir}/no/such/folder/m\\.safetensors: No such file`),
    );

    await Deno.writeFile(
      `${dir}/bad.safetensors`,
      file({ w: { dtype: "F32", shape: [3], data_offsets: [0, 12] } }, 8),
    );
    await assert.rejects(
      readSafetensors(`${dir}/bad.safetensors`),
      new RegExp(
        `Cannot read safetensors file ${dir}/bad\\.safetensors: tensor "w" ends at data offset 12`,
      ),
    );
    await assert.rejects(
      readSafetensors(`${dir}/missing.safetensors`),
      /Cannot read safetensors file .*missing\.safetensors: No such file/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`writeFileAtomic()` leaves a readable file (0644), not the temporary file's 0600", async () => {
  if (Deno.build.os === "windows") return; // no POSIX modes there
  const { writeFileAtomic } = await import("../../models/safetensors.ts");
  const dir = await Deno.makeTempDir();
  try {
    await writeFileAtomic(`${dir}/x.json`, "{}\n");
    const mode = (await Deno.stat(`${dir}/x.json`)).mode! & 0o777;
    if (mode !== 0o644) throw new Error(`mode ${mode.toString(8)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`parseSafetensors()` refuses a tensor name or entry key that appears twice", () => {
  // JSON.parse keeps the last of repeated keys: without this check the second "w" replaced the
  // first silently.
  const w = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
  rejects(
    file(`{"w":${w},"w":${w}}`, 4),
    /tensor "w" appears twice in the header \(a JSON reader keeps only the last\)/,
  );
  // The same name spelt with an escape is the same key.
  rejects(file(`{"w":${w},"\\u0077":${w}}`, 4), /tensor "w" appears twice/);
  rejects(
    file(`{"__metadata__":{},"__metadata__":{"format":"pt"}}`),
    /"__metadata__" appears twice in the header/,
  );
  rejects(
    file(`{"__metadata__":{"format":"pt","format":"np"}}`),
    /key "format" appears twice in "__metadata__"/,
  );
  rejects(
    file(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"dtype":"F16"}}`, 4),
    /key "dtype" appears twice in the entry of tensor "w"/,
  );
  // Keys that look alike inside strings, arrays and different objects are not repeats.
  const ok = parseSafetensors(file(
    `{"__metadata__":{"a":"\\"b\\":{","b":"}"},"a":{"dtype":"F32","shape":[1],` +
      `"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`,
    8,
  ));
  assert.deepEqual(ok.names(), ["a", "b"]);
});

Deno.test("`parseSafetensors()` refuses inherited property names as dtypes", () => {
  rejects(
    file({ w: { dtype: "toString", shape: [1], data_offsets: [0, 4] } }, 4),
    /tensor "w" has unsupported dtype "toString"/,
  );
});

Deno.test("`Safetensors.tensor()` refuses NaN and ±Infinity naming the tensor unless allowNonFinite", () => {
  const f64 = new Uint8Array(new Float64Array([1, 1e300]).buffer); // 1e300 overflows float32
  const bytes = file(
    {
      ok: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      f32: { dtype: "F32", shape: [3], data_offsets: [8, 20] },
      f16: { dtype: "F16", shape: [2], data_offsets: [20, 24] },
      bf16: { dtype: "BF16", shape: [2], data_offsets: [24, 28] },
      f64: { dtype: "F64", shape: [2], data_offsets: [28, 44] },
    },
    concat(f32le([1, 2]), f32le([0, NaN, -Infinity]), u16le([0x7c00, 0]), u16le([0, 0x7fc0]), f64),
  );
  const st = parseSafetensors(bytes, "w.safetensors");
  assert.deepEqual([...st.tensor("ok").data], [1, 2]);
  const refused: [string, RegExp][] = [
    [
      "f32",
      /"f32" in file w\.safetensors: 2 of its 3 values are not finite \(first: element 1 = NaN\)/,
    ],
    ["f16", /"f16" .*1 of its 2 values are not finite \(first: element 0 = Infinity\)/],
    ["bf16", /"bf16" .*1 of its 2 values .*element 1 = NaN/],
    ["f64", /"f64" .*1 of its 2 values .*element 1 = Infinity/],
  ];
  for (const [name, pattern] of refused) {
    assert.throws(() => st.tensor(name), (e: Error) => {
      assert.match(e.message, /^Cannot decode tensor /);
      assert.match(e.message, pattern);
      assert.match(e.message, /allowNonFinite: true/);
      return true;
    });
  }
  const allowed = parseSafetensors(bytes, "w.safetensors", { allowNonFinite: true });
  assert.ok(Number.isNaN(allowed.tensor("f32").data[1]));
  assert.equal(allowed.tensor("f64").data[1], Infinity);
});

Deno.test("`readSafetensors()` checks the header against the file size before reading the data", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A 4 GiB file (sparse: it costs no disk) whose header describes 4 bytes. Reading it whole
    // first, as before, took seconds and 4 GiB of memory before the size error.
    const path = `${dir}/big.safetensors`;
    await Deno.writeFile(path, file({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, 4));
    await Deno.truncate(path, 2 ** 32);
    const started = performance.now();
    await assert.rejects(
      readSafetensors(path),
      new RegExp(
        `^Error: Cannot read safetensors file ${path}: \\d+ bytes follow the last tensor "w"`,
      ),
    );
    assert.ok(performance.now() - started < 1000, "failed before reading the data");
    // A header that promises more data than the file holds.
    await Deno.writeFile(path, file({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, 4));
    await assert.rejects(readSafetensors(path), /"w" ends at data offset 16, past the end/);
    // Non-finite values are refused when read from a file too, unless allowed.
    await Deno.writeFile(
      path,
      file({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, f32le([NaN])),
    );
    const st = await readSafetensors(path);
    assert.equal(st.allowNonFinite, false);
    assert.throws(
      () => st.tensor("w"),
      /Cannot decode tensor "w" in file .*big\.safetensors: 1 of/,
    );
    const allowed = await readSafetensors(path, { allowNonFinite: true });
    assert.ok(Number.isNaN(allowed.tensor("w").data[0]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
