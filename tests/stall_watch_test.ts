import { StallWatch } from "../handlers/file/stall_watch.ts";
import { assertEquals } from "./_file_helpers.ts";

Deno.test("StallWatch marks a transfer idle after a check without progress, busy again on progress", () => {
  const calls: boolean[] = [];
  {
    using watch = new StallWatch({ setBusy: (busy) => calls.push(busy) }, 0);
    watch.progress();
    watch.check();
    assertEquals(calls, [], "busy while moving");
    watch.check();
    assertEquals([calls, watch.stalled], [[false], true], "stalled");
    watch.check();
    assertEquals(calls, [false], "marked once");
    watch.progress();
    assertEquals([calls, watch.stalled], [[false, true], false], "moving again");
    watch.check();
    watch.check();
  }
  assertEquals(calls, [false, true, false, true], "busy again once disposed");
});
