/** Whether a process named by its machine and pid is one of this machine's that no longer
 * exists (a run killed with kill -9): what makes a lock it left safe to take over. */
import os from "node:os";

export function goneFromThisMachine(hostname: string, pid: number): boolean {
  if (hostname !== os.hostname() || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}
