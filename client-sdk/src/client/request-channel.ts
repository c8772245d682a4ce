import type { ClientFrame, ServerFrame } from "../protocol/index.ts";
import { TributaryClientError } from "./errors.ts";

export interface PendingRequest {
  resolve(frame: ServerFrame): void;
  reject(err: TributaryClientError): void;
}

/**
 * Request ids and the requests awaiting a reply (internal to `TributaryClient`). One id
 * sequence serves requests and publishes alike, so a reply's id names exactly one of them.
 */
export class RequestChannel {
  readonly #requests = new Map<number, PendingRequest>();
  readonly #send: (frame: ClientFrame) => boolean;
  #nextId = 1;

  constructor(send: (frame: ClientFrame) => boolean) {
    this.#send = send;
  }

  /** A fresh id (requests and publishes). */
  nextId(): number {
    return this.#nextId++;
  }

  get(id: number): PendingRequest | undefined {
    return this.#requests.get(id);
  }

  set(id: number, request: PendingRequest): void {
    this.#requests.set(id, request);
  }

  delete(id: number): void {
    this.#requests.delete(id);
  }

  /** Rejects every pending request with `err` (connection lost or client closed). */
  rejectAll(err: TributaryClientError): void {
    for (const request of this.#requests.values()) request.reject(err);
    this.#requests.clear();
  }

  /** Sends a request frame with a fresh id; resolves with the reply (rejects on `error`). */
  request(frame: ClientFrame & { id?: number }, timeoutMs?: number): Promise<ServerFrame> {
    const id = this.#nextId++;
    return new Promise<ServerFrame>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        this.#requests.delete(id);
      };
      this.#requests.set(id, {
        resolve: (reply) => {
          done();
          resolve(reply);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      });
      if (timeoutMs) timer = setTimeout(() => this.#requests.get(id)?.reject(new TributaryClientError("TIMEOUT", `no reply to ${frame.op} in ${timeoutMs} ms`)), timeoutMs);
      if (!this.#send({ ...frame, id } as ClientFrame)) this.#requests.get(id)?.reject(new TributaryClientError("UNAVAILABLE", "not connected"));
    });
  }
}
