import { RequestError } from "../lib/framed_server.ts";
import { compareUtf8 } from "../handlers/file/dir_listing.ts";
import { isServableName, osMessage, splitRequestPath } from "../handlers/file/safe_path.ts";
import { assert, assertEquals } from "./_file_helpers.ts";

function outcome(path: unknown, showHidden = false): string {
  try {
    return "=" + splitRequestPath(path, { showHidden }).join("|");
  } catch (error) {
    if (error instanceof RequestError) return error.code;
    throw error;
  }
}

Deno.test("splitRequestPath accepts relative paths and refuses escapes", async (t) => {
  const cases: Array<[unknown, string, boolean?]> = [
    ["", "="],
    [".", "="],
    ["./", "="],
    ["a", "=a"],
    ["a/b/c.txt", "=a|b|c.txt"],
    ["a//b/./c/", "=a|b|c"],
    ["中文/名字.txt", "=中文|名字.txt"],
    ["a b/ c", "=a b| c"],
    ["..", "forbidden"],
    ["../a", "forbidden"],
    ["a/../../b", "forbidden"],
    ["a/..", "forbidden"],
    ["/a", "forbidden"],
    ["//a", "forbidden"],
    ["a\0b", "forbidden"],
    ["a\\b", "forbidden"],
    ["..\\a", "forbidden"],
    ["x".repeat(255), "=" + "x".repeat(255)],
    ["x".repeat(256), "forbidden"],
    ["名".repeat(85), "=" + "名".repeat(85)],
    ["名".repeat(86), "forbidden"],
    [("a".repeat(200) + "/").repeat(21), "forbidden"],
    [".a", "not_found"],
    ["a/.b/c", "not_found"],
    [".a", "=.a", true],
    ["..a", "not_found"],
    ["..a", "=..a", true],
    ["a/.switchboard-upload-0123456789abcdef.tmp", "not_found", true],
    ["../.a", "forbidden"],
    [1, "bad_request"],
    [null, "bad_request"],
    [["a"], "bad_request"],
    ["\udc00", "bad_request"],
  ];
  for (const [path, expected, showHidden] of cases) {
    const shown = typeof path === "string" && path.length > 40
      ? `${path.slice(0, 20)}…(${path.length})`
      : path;
    await t.step(
      `${JSON.stringify(shown)}${showHidden ? " (show_hidden)" : ""} → ${expected.slice(0, 30)}`,
      () => {
        assertEquals(outcome(path, showHidden), expected, "outcome");
      },
    );
  }
});

Deno.test("isServableName leaves out names a request could not address", () => {
  const rules = { showHidden: false };
  assert(isServableName("a.txt", rules), "plain");
  assert(isServableName("中文", rules), "unicode");
  assert(!isServableName(".x", rules), "hidden");
  assert(isServableName(".x", { showHidden: true }), "hidden shown");
  assert(!isServableName("a\\b", rules), "backslash");
  assert(!isServableName(".switchboard-upload-0123456789abcdef.tmp", { showHidden: true }), "temp");
});

Deno.test("compareUtf8 orders by code point, as UTF-8 bytes do", () => {
  const names = ["\u{1F600}", "\uFB00", "é", "z", "a", "B", "ab", "a\u0000"];
  const sorted = [...names].sort(compareUtf8);
  const bytes = [...names].sort((x, y) => {
    const a = new TextEncoder().encode(x);
    const b = new TextEncoder().encode(y);
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
    return a.length - b.length;
  });
  assertEquals(sorted, bytes, "order");
  assertEquals(sorted, ["B", "a", "a\u0000", "ab", "z", "é", "\uFB00", "\u{1F600}"], "expected");
});

Deno.test("osMessage keeps the OS reason and drops the paths Deno appends", () => {
  const error = new Error("No such file or directory (os error 2): open '/secret/place'");
  assertEquals(osMessage(error), "No such file or directory (os error 2)", "message");
  assertEquals(osMessage(new Error("plain")), "plain", "plain");
});
