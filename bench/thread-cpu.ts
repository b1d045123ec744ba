// CPU time a process has used, split by who used it: the engine's native
// threads (named ns-* by the addon), the Node event loop (the main thread),
// and Node's other threads (GC, libuv). Linux only (/proc); zeros elsewhere.
import { readFileSync, readdirSync } from "node:fs";

export interface ThreadCpu {
  engine: number;
  eventLoop: number;
  other: number;
}

const TICKS_PER_SECOND = 100; // USER_HZ, 100 on every Linux a benchmark here runs on

export function threadCpu(pid: number): ThreadCpu {
  const out: ThreadCpu = { engine: 0, eventLoop: 0, other: 0 };
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue; // the thread ended between the listing and the read
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is the state (field 3)
    const seconds = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // utime, stime
    if (comm.startsWith("ns-")) out.engine += seconds;
    else if (Number(tid) === pid) out.eventLoop += seconds;
    else out.other += seconds;
  }
  return out;
}

export const cpuSince = (before: ThreadCpu, after: ThreadCpu): ThreadCpu => ({
  engine: after.engine - before.engine,
  eventLoop: after.eventLoop - before.eventLoop,
  other: after.other - before.other,
});

/** This process's CPU seconds (every thread) since `start`, a process.cpuUsage() reading. */
export const processCpuSince = (start: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1e6;
};
