import { StallWatch } from "../lib/stall_watch.ts";
import { assertEquals } from "./_file_helpers.ts";

Deno.test("StallWatch marks a transfer idle after an interval without progress, busy again on progress", async () => {
  const calls: boolean[] = [];
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  {
    using watch = new StallWatch({ setBusy: (busy) => calls.push(busy) }, 20);
    watch.progress();
    await sleep(30); // one tick with progress: still busy
    assertEquals(calls, [], "busy while moving");
    await sleep(40); // a tick without progress
    assertEquals(calls, [false], "stalled");
    watch.progress();
    assertEquals(calls, [false, true], "moving again");
    await sleep(70);
  }
  assertEquals(calls.at(-1), true, "busy again once disposed");
});
