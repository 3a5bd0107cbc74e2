/**
 * Small hand-written SVG charts for run reports: line charts (loss curves) and grouped bar charts
 * (scores before and after). No dependencies; text is escaped.
 *
 * @module
 */

const COLORS = [
  "#4e79a7",
  "#f28e2b",
  "#59a14f",
  "#e15759",
  "#76b7b2",
  "#edc948",
  "#b07aa1",
  "#9c755f",
];

function esc(s: string): string {
  return s.replace(
    /[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!,
  );
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** One line of a {@linkcode lineChart}: points (x, y), NaN y values skipped. */
export interface Series {
  /** Legend label. */
  label: string;
  /** Points. */
  points: [number, number][];
}

/** A line chart of several series with axes, ticks and a legend. */
export function lineChart(
  title: string,
  xLabel: string,
  yLabel: string,
  series: readonly Series[],
): string {
  const W = 640, H = 360, L = 60, R = 150, Tp = 40, Bt = 50;
  const pts = series.flatMap((s) => s.points.filter(([, y]) => Number.isFinite(y)));
  const xMax = Math.max(1, ...pts.map(([x]) => x)),
    yMax = niceMax(Math.max(...pts.map(([, y]) => y), 0));
  const sx = (x: number) => L + ((W - L - R) * x) / xMax,
    sy = (y: number) => H - Bt - ((H - Tp - Bt) * y) / yMax;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${L}" y1="${H - Bt}" x2="${W - R}" y2="${H - Bt}" stroke="black"/>`,
    `<line x1="${L}" y1="${Tp}" x2="${L}" y2="${H - Bt}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text x="14" y="${(Tp + H - Bt) / 2}" text-anchor="middle" transform="rotate(-90 14 ${
      (Tp + H - Bt) / 2
    })">${esc(yLabel)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const y = (yMax * i) / 4;
    out.push(`<text x="${L - 6}" y="${sy(y) + 4}" text-anchor="end">${+y.toPrecision(3)}</text>`);
    out.push(`<line x1="${L}" y1="${sy(y)}" x2="${W - R}" y2="${sy(y)}" stroke="#ddd"/>`);
    const x = Math.round((xMax * i) / 4);
    out.push(`<text x="${sx(x)}" y="${H - Bt + 16}" text-anchor="middle">${x}</text>`);
  }
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const d = s.points.filter(([, y]) => Number.isFinite(y)).map(([x, y], j) =>
      `${j ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`
    )
      .join("");
    if (d) out.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="1.5"/>`);
    out.push(`<rect x="${W - R + 12}" y="${Tp + 18 * i}" width="12" height="12" fill="${c}"/>`);
    out.push(`<text x="${W - R + 30}" y="${Tp + 18 * i + 10}">${esc(s.label)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** A grouped bar chart: one group per category, one bar per series. */
export function barChart(
  title: string,
  yLabel: string,
  categories: readonly string[],
  series: readonly { label: string; values: number[] }[],
): string {
  const W = Math.max(640, 90 * categories.length + 200),
    H = 420,
    L = 60,
    R = 150,
    Tp = 40,
    Bt = 120;
  const yMax = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter(Number.isFinite))));
  const gw = (W - L - R) / Math.max(1, categories.length),
    bw = (gw * 0.8) / Math.max(1, series.length);
  const sy = (y: number) => H - Bt - ((H - Tp - Bt) * y) / yMax;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${L}" y1="${H - Bt}" x2="${W - R}" y2="${H - Bt}" stroke="black"/>`,
    `<text x="14" y="${(Tp + H - Bt) / 2}" text-anchor="middle" transform="rotate(-90 14 ${
      (Tp + H - Bt) / 2
    })">${esc(yLabel)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const y = (yMax * i) / 4;
    out.push(`<text x="${L - 6}" y="${sy(y) + 4}" text-anchor="end">${+y.toPrecision(3)}</text>`);
    out.push(`<line x1="${L}" y1="${sy(y)}" x2="${W - R}" y2="${sy(y)}" stroke="#ddd"/>`);
  }
  categories.forEach((cat, g) => {
    const x0 = L + g * gw + gw * 0.1;
    series.forEach((s, i) => {
      const v = s.values[g];
      if (!Number.isFinite(v)) return;
      out.push(
        `<rect x="${(x0 + i * bw).toFixed(1)}" y="${sy(v).toFixed(1)}" width="${
          (bw - 1).toFixed(1)
        }" height="${(H - Bt - sy(v)).toFixed(1)}" fill="${COLORS[i % COLORS.length]}"><title>${
          esc(`${cat} · ${s.label}: ${v.toFixed(2)}`)
        }</title></rect>`,
      );
    });
    const cx = L + g * gw + gw / 2;
    out.push(
      `<text x="${cx}" y="${H - Bt + 14}" text-anchor="end" transform="rotate(-30 ${cx} ${
        H - Bt + 14
      })">${esc(cat)}</text>`,
    );
  });
  series.forEach((s, i) => {
    out.push(
      `<rect x="${W - R + 12}" y="${Tp + 18 * i}" width="12" height="12" fill="${
        COLORS[i % COLORS.length]
      }"/>`,
    );
    out.push(`<text x="${W - R + 30}" y="${Tp + 18 * i + 10}">${esc(s.label)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
