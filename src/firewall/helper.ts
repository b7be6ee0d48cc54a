/**
 * The privileged helper of `swfw serve --open-firewall`: a child process that keeps root only to
 * insert and remove the firewall rules, while the server that talks to clients drops to an
 * unprivileged user (vsftpd's split by trust). It is started before the drop and answers four
 * messages: prepare (can rules be changed here?), open, close, and its parent going away. When the
 * server dies without a word (kill -9), the IPC channel closes and the helper removes the rules
 * itself, so no rule outlives the server.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Logger, LogFields } from '../core/logger.js';
import { FirewallRefusal, type OpenSummary } from './linuxFirewall.js';
import type { RuleSpec } from './rules.js';

export type ToHelper = { type: 'prepare'; spec: RuleSpec } | { type: 'open' } | { type: 'close' };
export type FromHelper =
  | { type: 'prepared' }
  | { type: 'opened'; summary: OpenSummary }
  | { type: 'closed'; removed: number }
  | { type: 'refused'; message: string }
  | { type: 'failed'; message: string }
  | { type: 'log'; level: 'error' | 'warn' | 'info' | 'debug'; message: string; fields: LogFields };

/** How long the helper may take to answer (iptables may wait for the xtables lock, `-w`). */
const ANSWER_TIMEOUT_MS = 30_000;

export class FirewallHelper {
  private answers: ((message: FromHelper) => void)[] = [];
  private exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly logger: Logger,
  ) {
    child.on('message', (message: FromHelper) => {
      if (message.type === 'log') return this.logger[message.level](message.message, { ...message.fields, component: 'firewall-helper' });
      this.answers.shift()?.(message);
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.exited.then(() => {
      for (const answer of this.answers.splice(0)) answer({ type: 'failed', message: 'the firewall helper exited' });
    });
  }

  /**
   * Starts the helper (as the current user: root) and asks whether rules can be changed here.
   * Throws FirewallRefusal with the reason (not root, not Linux, no iptables or nft).
   */
  static async start(spec: RuleSpec, logger: Logger): Promise<FirewallHelper> {
    // Its own process group: a Ctrl-C at the terminal reaches the server, which closes the
    // rules through the helper once its transfers are done.
    const child = fork(new URL('./helperMain.js', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });
    const helper = new FirewallHelper(child, logger);
    const answer = await helper.ask({ type: 'prepare', spec });
    if (answer.type === 'refused') {
      await helper.stop();
      throw new FirewallRefusal(answer.message);
    }
    if (answer.type !== 'prepared') {
      await helper.stop();
      throw new Error(answer.type === 'failed' ? answer.message : `unexpected answer ${answer.type}`);
    }
    return helper;
  }

  /** The helper's pid (it keeps root; the server does not). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  private ask(message: ToHelper): Promise<FromHelper> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ type: 'failed', message: `the firewall helper did not answer "${message.type}" within ${ANSWER_TIMEOUT_MS} ms` }), ANSWER_TIMEOUT_MS);
      this.answers.push((answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      if (!this.child.connected) return this.answers.shift()?.({ type: 'failed', message: 'the firewall helper is gone' });
      this.child.send(message);
    });
  }

  async open(): Promise<OpenSummary> {
    const answer = await this.ask({ type: 'open' });
    if (answer.type !== 'opened') throw new Error(answer.type === 'failed' || answer.type === 'refused' ? answer.message : 'the firewall helper did not open the rules');
    return answer.summary;
  }

  /** Removes the rules; the helper exits after answering. */
  async close(): Promise<number> {
    const answer = await this.ask({ type: 'close' });
    await this.stop();
    if (answer.type !== 'closed') throw new Error(answer.type === 'failed' || answer.type === 'refused' ? answer.message : 'the firewall helper did not remove the rules');
    return answer.removed;
  }

  /** Lets the helper go (it removes any rule still in place when its channel closes) and waits for it. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.connected) this.child.disconnect();
    await this.exited;
  }
}
