/** How a check-ports report is shown: a table for people, or one JSON object for scripts. */
import type { CheckPortsReport, ControlReport } from './checkPorts.js';
import { formatPortList, type PortResult } from './classify.js';

function formatMs(ms: number | null): string {
  return ms === null ? '-' : `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`;
}

/** The JSON form: `{"host", "control": {...}, "ports": [{"port", "status", ...}], "verdict": {...}}`, ports ascending. */
export function reportJson(report: CheckPortsReport): string {
  return JSON.stringify({
    host: report.host,
    control: report.control,
    ports: [...report.ports].sort((a, b) => a.port - b.port).map(portJson),
    web: report.web,
    verdict: report.verdict,
  });
}

function portJson(result: PortResult): Record<string, unknown> {
  return {
    port: result.port,
    status: result.status,
    detail: result.detail,
    direct: result.direct,
    pasv: result.pasv,
  };
}

/** The JSON printed when the control port cannot be reached: no port could be tested. */
export function unreachableJson(host: string, control: ControlReport): string {
  return JSON.stringify({ host, control, ports: [], web: [], verdict: { ok: false, portsToOpen: [control.port], line: `verdict: FAIL: control port ${control.port} is not reachable`, notes: [] } });
}

/** The table for people: the control port, one row per passive port, the verdict and notes. */
export function reportTable(report: CheckPortsReport): string {
  const { control } = report;
  const rows: string[][] = [['PORT', 'STATUS', 'DETAIL']];
  rows.push([
    `${control.port} (control)`,
    control.status,
    `${control.address}, connect ${formatMs(control.connectMs)}, round trip ${formatMs(control.rttMs)}${control.tls ? ', FTPS' : ', plain FTP'}`,
  ]);
  for (const result of [...report.ports].sort((a, b) => a.port - b.port)) rows.push([String(result.port), result.status, result.detail]);
  for (const web of report.web) {
    const detail = web.statusLine ? `HEAD / answered "${web.statusLine}", connect ${formatMs(web.connectMs)}` : (web.error ?? '');
    rows.push([`${web.port} (${web.protocol})`, web.status, detail]);
  }
  const widths = [0, 1].map((col) => Math.max(...rows.map((r) => r[col]!.length)));
  const lines = [`swfw check-ports ${report.host}: passive ${formatPortList(report.ports.map((p) => p.port))}`];
  for (const row of rows) lines.push(`${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padEnd(widths[1]!)}  ${row[2]}`);
  lines.push(report.verdict.line);
  for (const note of report.verdict.notes) lines.push(`note: ${note}`);
  return `${lines.join('\n')}\n`;
}
