/**
 * Runs tasks one after the other, in call order. Each caller gets its own task's result or
 * error; a failed task is reported to its caller only, and the next task still runs.
 */
export class SerialQueue {
  #tail: Promise<void> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    // The queue waits for the task to settle; its outcome belongs to `result`'s caller.
    this.#tail = result.then(settled, settled);
    return result;
  }
}

function settled(): void {}
