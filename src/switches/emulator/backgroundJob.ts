/**
 * The one download a switch runs in the background, beside its CLI or REST sessions: Dell OS10's
 * `image download`, AOS-CX's `PUT /firmware`. One at a time (a switch refuses a second while
 * one runs); stopped with the fleet, so no transfer outlives the emulator.
 */
export class BackgroundJob {
  private controller: AbortController | null = null;
  private task: Promise<void> | null = null;

  get running(): boolean {
    return this.task !== null;
  }

  /**
   * Runs `work` with its own AbortController (aborted by `stop`, or by `work` itself to inject a
   * fault). A rejection goes to `onError`; either way the job is over when it settles.
   */
  start(work: (controller: AbortController) => Promise<void>, onError: (err: Error) => void): void {
    const controller = new AbortController();
    this.controller = controller;
    this.task = work(controller)
      .catch(onError)
      .finally(() => {
        this.task = null;
        this.controller = null;
      });
  }

  /** Aborts a running job and waits until it has settled. */
  async stop(): Promise<void> {
    this.controller?.abort();
    await this.task;
  }
}
