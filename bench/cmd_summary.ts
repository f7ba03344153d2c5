/**
 * Summarises bench/run_cmd.sh results: medians over rounds per server and
 * client count, and switchboard's ratios to the best of the classic servers
 * (socat, ncat, xinetd, Python), as a Markdown table.
 *
 *   deno run -A bench/cmd_summary.ts bench/out/cmd_results.jsonl
 *
 * @module
 */

interface Row {
  server: string;
  clients: number;
  per_second: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
}

const CLASSIC = ["socat", "ncat", "xinetd", "python"];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const rows: Row[] = (await Deno.readTextFile(Deno.args[0] ?? "bench/out/cmd_results.jsonl"))
  .split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line));

for (const clients of [...new Set(rows.map((r) => r.clients))]) {
  const servers = [...new Set(rows.map((r) => r.server))];
  const stats = servers.map((server) => {
    const mine = rows.filter((r) => r.server === server && r.clients === clients);
    return {
      server,
      rounds: mine.length,
      perSecond: median(mine.map((r) => r.per_second)),
      p50: median(mine.map((r) => r.p50_ms)),
      p99: median(mine.map((r) => r.p99_ms)),
      errors: mine.reduce((sum, r) => sum + r.errors, 0),
    };
  });
  const classic = stats.filter((s) => CLASSIC.includes(s.server));
  const bestRate = Math.max(...classic.map((s) => s.perSecond));
  const bestP50 = Math.min(...classic.map((s) => s.p50));
  console.log(`\n### ${clients} client${clients === 1 ? "" : "s"}\n`);
  console.log("| server | cmds/s | p50 ms | p99 ms | rate / best | p50 / best | errors |");
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const s of stats) {
    console.log(
      `| ${s.server} | ${s.perSecond.toFixed(0)} | ${s.p50.toFixed(2)} | ${s.p99.toFixed(2)} | ` +
        `${(s.perSecond / bestRate).toFixed(2)} | ${(s.p50 / bestP50).toFixed(2)} | ${s.errors} |`,
    );
  }
  const best = classic.find((s) => s.perSecond === bestRate)!;
  const fastest = classic.find((s) => s.p50 === bestP50)!;
  console.log(
    `\nBest classic rate: ${best.server} ${bestRate.toFixed(0)}/s; ` +
      `best classic p50: ${fastest.server} ${
        bestP50.toFixed(2)
      } ms (medians of ${best.rounds} rounds).`,
  );
}
