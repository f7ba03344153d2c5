/**
 * The command the bare Deno cmd servers run: `/bin/sh -c true` with piped
 * output and a clean environment, optionally through setsid(1) (a new
 * session and process group, as switchboard starts commands).
 *
 * @module
 */

/**
 * Spawns `/bin/sh -c true`.
 * @param viaSetsid start it through `/usr/bin/setsid --`
 * @returns the child (stdout and stderr piped, stdin /dev/null)
 * @throws {Deno.errors.NotFound} when /bin/sh or setsid is missing
 */
export function spawnTrue(viaSetsid: boolean): Deno.ChildProcess {
  return new Deno.Command(viaSetsid ? "/usr/bin/setsid" : "/bin/sh", {
    args: viaSetsid ? ["--", "/bin/sh", "-c", "true"] : ["-c", "true"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
  }).spawn();
}
