/**
 * Counts what is alive on the JS heap of a Deno process started with
 * `--inspect=127.0.0.1:PORT`: takes a V8 heap snapshot through the inspector
 * (which collects garbage first) and prints object counts and bytes grouped by
 * constructor or closure name. With two snapshot files it prints the
 * difference, which is how bench/history/echo.md found what an idle
 * connection keeps alive.
 *
 * usage:
 *   deno run -A bench/heap_census.ts snap INSPECT_PORT OUT.json
 *   deno run -A bench/heap_census.ts diff BEFORE.json AFTER.json [PER]
 * (PER divides the differences, e.g. by the number of connections opened.)
 *
 * @module
 */

interface Census {
  [key: string]: { count: number; bytes: number };
}

/**
 * Takes a heap snapshot through the inspector and reduces it to a census.
 * @param port the inspector's port
 * @returns counts and bytes per "type:name"
 */
async function snapshot(port: number): Promise<Census> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  const chunks: string[] = [];
  const done = new Promise<void>((resolve) => {
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(message.params.chunk);
      if (message.id === 2) resolve();
    };
  });
  socket.send(JSON.stringify({ id: 1, method: "HeapProfiler.enable" }));
  socket.send(JSON.stringify({ id: 2, method: "HeapProfiler.takeHeapSnapshot" }));
  await done;
  socket.close();
  return census(JSON.parse(chunks.join("")));
}

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

function census(heap: HeapSnapshot): Census {
  const fields = heap.snapshot.meta.node_fields;
  const types = heap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const result: Census = {};
  for (let i = 0; i < heap.nodes.length; i += width) {
    const type = types[heap.nodes[i + typeAt]!]!;
    let name = heap.strings[heap.nodes[i + nameAt]!]!;
    if (type === "string" || type === "concatenated string" || type === "sliced string") name = "";
    if (type === "number") name = "";
    const key = `${type}:${name.slice(0, 60)}`;
    const entry = result[key] ??= { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += heap.nodes[i + sizeAt]!;
  }
  return result;
}

function diff(before: Census, after: Census, per: number): void {
  const rows = Object.keys({ ...before, ...after }).map((key) => {
    const a = before[key] ?? { count: 0, bytes: 0 };
    const b = after[key] ?? { count: 0, bytes: 0 };
    return { key, count: (b.count - a.count) / per, bytes: (b.bytes - a.bytes) / per };
  }).filter((row) => Math.abs(row.bytes) >= 1 || Math.abs(row.count) >= 0.5);
  rows.sort((x, y) => y.bytes - x.bytes);
  let total = 0;
  for (const row of rows) total += row.bytes;
  console.log(`total bytes${per === 1 ? "" : ` per ${per}`}: ${total.toFixed(0)}`);
  for (const row of rows.slice(0, 40)) {
    console.log(
      `${row.bytes.toFixed(0).padStart(10)} B ${row.count.toFixed(2).padStart(9)} × ${row.key}`,
    );
  }
}

if (import.meta.main) {
  const [verb, a, b, per] = Deno.args;
  if (verb === "snap" && a && b) {
    await Deno.writeTextFile(b, JSON.stringify(await snapshot(Number(a))));
  } else if (verb === "diff" && a && b) {
    const read = async (path: string): Promise<Census> => JSON.parse(await Deno.readTextFile(path));
    diff(await read(a), await read(b), Number(per ?? 1));
  } else {
    console.error(
      "usage: heap_census.ts snap INSPECT_PORT OUT.json | diff BEFORE.json AFTER.json [PER]",
    );
    Deno.exit(64);
  }
}
