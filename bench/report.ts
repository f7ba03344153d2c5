/**
 * Turns `bench/run`'s measurements into bench/RESULTS.md (per service a
 * table: every server's median, spread, ratio to the reference and CPU per
 * operation, with the exact commands) and bench/results.svg (every ratio
 * against 1.0, on a log scale).
 *
 * @module
 */

import { summarize, type Summary } from "./harness.ts";
import type { Sample, Scenario } from "./scenarios.ts";

/** One measurement of one server in one round. */
export interface Measured {
  /** The scenario id. */
  scenario: string;
  /** The server id. */
  server: string;
  /** The round, from 1. */
  round: number;
  /** What it gave. */
  sample: Sample;
}

/** A ratio the chart shows: above 1.0 switchboard leads. */
export interface Ratio {
  /** What is compared. */
  label: string;
  /** Which switchboard variant. */
  variant: string;
  /** The ratio (switchboard ÷ reference for throughput, reference ÷ switchboard for costs). */
  value: number;
  /** The issue's target for it. */
  target?: number;
}

/** Footprint figures: size, start-up, memory. */
export interface Footprint {
  /** Rows: what, per variant, the figures. */
  rows: { what: string; variant: string; summary: Summary; unit: string; target?: number }[];
  /** Notes printed under the table. */
  notes: string[];
}

/** Everything the report needs besides the measurements. */
export interface ReportInput {
  /** The scenarios that ran. */
  scenarios: Scenario[];
  /** Their measurements. */
  measured: Measured[];
  /** Footprint figures (absent when not measured). */
  footprint?: Footprint;
  /** Lines describing the machine and run. */
  header: string[];
  /** The command that produced it. */
  command: string;
}

function fmt(value: number, digits?: number): string {
  if (!Number.isFinite(value)) return "–";
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
}

function summaryOf(measured: Measured[], scenario: string, server: string): Summary {
  return summarize(
    measured.filter((m) => m.scenario === scenario && m.server === server).map((m) =>
      m.sample.value
    ),
  );
}

function referenceOf(scenario: Scenario, measured: Measured[]): string | undefined {
  if (scenario.reference !== "best-peer") return scenario.reference;
  let best: string | undefined;
  let bestValue = NaN;
  for (const server of scenario.servers.filter((s) => s.role !== "switchboard")) {
    const median = summaryOf(measured, scenario.id, server.id).median;
    const better = scenario.higherIsBetter ? median > bestValue : median < bestValue;
    if (Number.isFinite(median) && (!Number.isFinite(bestValue) || better)) {
      best = server.id;
      bestValue = median;
    }
  }
  return best;
}

function ratioOf(scenario: Scenario, value: number, reference: number): number {
  return scenario.higherIsBetter ? value / reference : reference / value;
}

/**
 * The ratios of every switchboard variant against each scenario's
 * reference, and of the footprint figures against their targets.
 * @param input the report input
 * @returns the ratios, in report order
 */
export function ratios(input: ReportInput): Ratio[] {
  const out: Ratio[] = [];
  for (const scenario of input.scenarios) {
    const reference = referenceOf(scenario, input.measured);
    if (!reference) continue;
    const ref = summaryOf(input.measured, scenario.id, reference).median;
    for (const server of scenario.servers.filter((s) => s.role === "switchboard")) {
      const value = summaryOf(input.measured, scenario.id, server.id).median;
      const ratio = ratioOf(scenario, value, ref);
      if (Number.isFinite(ratio)) {
        out.push({
          label: `${scenario.id} vs ${reference}`,
          variant: server.id,
          value: ratio,
          target: scenario.target,
        });
      }
    }
  }
  for (const row of input.footprint?.rows ?? []) {
    if (row.target === undefined || !(row.summary.median > 0)) continue;
    out.push({
      label: `${row.what} vs target ${row.target} ${row.unit}`,
      variant: row.variant,
      value: row.target / row.summary.median,
      target: 1,
    });
  }
  return out;
}

function scenarioTable(scenario: Scenario, measured: Measured[]): string[] {
  const reference = referenceOf(scenario, measured);
  const ref = reference ? summaryOf(measured, scenario.id, reference) : undefined;
  const refRounds = measured.filter((m) => m.scenario === scenario.id && m.server === reference);
  const columns = scenario.columns ?? [];
  const direction = scenario.higherIsBetter ? "÷" : "reference ÷";
  const lines = [
    `### ${scenario.title}`,
    "",
    `Primary figure: ${scenario.unit} (${
      scenario.higherIsBetter ? "higher is better" : "lower is better"
    }); ratio ${scenario.higherIsBetter ? "server ÷" : "reference ÷ server,"} ${
      reference ?? "the reference"
    } (${direction} per round in brackets)${
      scenario.target ? `; target for switchboard ≥ ${scenario.target}` : ""
    }.`,
    "",
    `| server | ${scenario.unit} median | min – max | ratio (per-round range) | ${scenario.cpuUnit} | ${
      columns.map((c) => c.label).join(" | ")
    }${columns.length ? " | " : ""}rounds |`,
    `|---|--:|--:|--:|--:|${columns.map(() => "--:|").join("")}--:|`,
  ];
  for (const server of scenario.servers) {
    const own = measured.filter((m) => m.scenario === scenario.id && m.server === server.id);
    if (own.length === 0) continue;
    const summary = summarize(own.map((m) => m.sample.value));
    const ratio = ref ? ratioOf(scenario, summary.median, ref.median) : NaN;
    const perRound = own.flatMap((m) => {
      const other = refRounds.find((r) => r.round === m.round);
      return other ? [ratioOf(scenario, m.sample.value, other.sample.value)] : [];
    });
    const rr = summarize(perRound);
    const cpu = summarize(own.map((m) => m.sample.cpu ?? NaN));
    const extras = columns.map((c) =>
      fmt(summarize(own.map((m) => m.sample.extra?.[c.key] ?? NaN)).median, c.digits)
    );
    const flaws = own.filter((m) => m.sample.flaw).map((m) => `r${m.round}: ${m.sample.flaw}`);
    const name = server.role === "switchboard" ? `**${server.id}**` : server.id;
    lines.push(
      `| ${name} | ${fmt(summary.median)} | ${fmt(summary.min)} – ${fmt(summary.max)} | ${
        fmt(ratio)
      } (${fmt(rr.min)}–${fmt(rr.max)}) | ${fmt(cpu.median)} | ${extras.join(" | ")}${
        extras.length ? " | " : ""
      }${own.length}${flaws.length ? ` ⚠ ${flaws.join("; ")}` : ""} |`,
    );
  }
  lines.push("", "Commands (PORT and CFG are chosen per run):", "");
  const seen = new Set<string>();
  for (const server of scenario.servers) {
    const line = `- ${server.id}: \`${server.command}\`; load: \`${server.load}\``;
    if (!seen.has(line)) lines.push(line);
    seen.add(line);
  }
  lines.push("");
  return lines;
}

/**
 * Renders RESULTS.md.
 * @param input measurements, scenarios, footprint and run description
 * @returns the Markdown text
 */
export function renderMarkdown(input: ReportInput): string {
  const lines = [
    "# Benchmark results",
    "",
    `Written by \`${input.command}\` (do not edit by hand). ${input.header.join(" ")}`,
    "",
    "Every scenario starts all its servers, then measures them round by round in a rotated",
    "order, so slow drifts of a shared machine hit every server alike; figures are medians over the",
    "rounds with their spread. Server CPU is the user+system time of the server's whole process tree",
    "(workers, and the children a forking server or cmd reaps) over the run, per operation.",
    "",
    "![every ratio against 1.0](results.svg)",
    "",
    "## Standing",
    "",
    "| comparison | switchboard variant | ratio | target | met |",
    "|---|---|--:|--:|:-:|",
  ];
  for (const ratio of ratios(input)) {
    const met = ratio.target === undefined ? "" : ratio.value >= ratio.target ? "yes" : "no";
    lines.push(
      `| ${ratio.label} | ${ratio.variant} | ${fmt(ratio.value)} | ${
        ratio.target ?? ""
      } | ${met} |`,
    );
  }
  lines.push("");
  const services = [...new Set(input.scenarios.map((s) => s.service))];
  for (const service of services) {
    lines.push(`## ${service}`, "");
    for (const scenario of input.scenarios.filter((s) => s.service === service)) {
      lines.push(...scenarioTable(scenario, input.measured));
    }
  }
  if (input.footprint) {
    lines.push(
      "## Footprint",
      "",
      "| what | variant | median | min – max | samples | target |",
      "|---|---|--:|--:|--:|--:|",
    );
    for (const row of input.footprint.rows) {
      lines.push(
        `| ${row.what} | ${row.variant} | ${fmt(row.summary.median)} ${row.unit} | ${
          fmt(row.summary.min)
        } – ${fmt(row.summary.max)} | ${row.summary.n} | ${
          row.target === undefined ? "" : `≤ ${row.target} ${row.unit}`
        } |`,
      );
    }
    lines.push("", ...input.footprint.notes.map((note) => `- ${note}`), "");
  }
  return lines.join("\n") + "\n";
}

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/**
 * Renders the chart: one horizontal bar per ratio on a log₂ scale from
 * 1/8 to 16, a line at 1.0, and a tick at each target.
 * @param list the ratios
 * @param title the chart's title
 * @returns SVG text
 */
export function renderSvg(list: readonly Ratio[], title: string): string {
  const rowHeight = 18;
  const labelWidth = 430;
  const plotWidth = 420;
  const top = 40;
  const height = top + list.length * rowHeight + 40;
  const width = labelWidth + plotWidth + 70;
  const min = Math.log2(1 / 8);
  const max = Math.log2(16);
  const x = (value: number): number =>
    labelWidth +
    (Math.min(Math.max(Math.log2(value), min), max) - min) / (max - min) * plotWidth;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="13" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  for (const tick of [0.125, 0.25, 0.5, 1, 2, 4, 8, 16]) {
    parts.push(
      `<line x1="${x(tick)}" y1="${top - 6}" x2="${x(tick)}" y2="${height - 30}" stroke="${
        tick === 1 ? "#000" : "#ddd"
      }" stroke-width="${tick === 1 ? 1.5 : 1}"/>`,
      `<text x="${x(tick)}" y="${height - 16}" text-anchor="middle">${tick}×</text>`,
    );
  }
  list.forEach((ratio, index) => {
    const y = top + index * rowHeight;
    const good = ratio.value >= (ratio.target ?? 1);
    const x0 = x(1);
    const x1 = x(ratio.value);
    parts.push(
      `<text x="${labelWidth - 6}" y="${y + 12}" text-anchor="end">${
        escapeXml(`${ratio.label} — ${ratio.variant}`)
      }</text>`,
      `<rect x="${Math.min(x0, x1)}" y="${y + 3}" width="${
        Math.max(1, Math.abs(x1 - x0))
      }" height="${rowHeight - 6}" fill="${good ? "#3a8f3a" : "#c0392b"}"/>`,
      `<text x="${Math.max(x0, x1) + 4}" y="${y + 12}">${ratio.value.toFixed(2)}</text>`,
    );
    if (ratio.target !== undefined && ratio.target !== 1) {
      parts.push(
        `<line x1="${x(ratio.target)}" y1="${y + 1}" x2="${x(ratio.target)}" y2="${
          y + rowHeight - 1
        }" stroke="#555" stroke-dasharray="2,2"/>`,
      );
    }
  });
  parts.push(
    `<text x="${labelWidth}" y="${
      height - 2
    }">ratio, log scale: right of 1.0 switchboard leads (green: target met; dashed: a target other than 1.0)</text>`,
    "</svg>",
  );
  return parts.join("\n") + "\n";
}
