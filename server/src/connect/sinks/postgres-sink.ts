/**
 * PostgreSQL sink (`type: postgres-sink`, the `pg` client): writes records into a table per
 * topic (or a `tables` mapping), each row keyed by the record's (topic, partition, offset):
 *
 *   src_topic text, src_partition integer, src_offset bigint,   -- PRIMARY KEY / UNIQUE
 *   src_key text, src_timestamp timestamptz,
 *   value jsonb                                  -- mode: jsonb (default)
 *   <column> <any type>, ...                     -- mode: columns (JSON fields → columns)
 *
 * Exactly-once: rows are unique on (src_topic, src_partition, src_offset) and a batch is one
 * transaction, so a record delivered again after a crash (the group commit is
 * at-least-once) finds its row and is skipped: each record is in the table once, whatever
 * the restarts. In mode jsonb a batch goes in with `COPY ... FROM STDIN` (method "copy",
 * default: COPY's speed; one statement, its own transaction, when the batch has one table),
 * its rows encoded into one buffer (copy-rows.ts); when the batch meets rows already there
 * (unique violation, only after a redelivery) the transaction is rolled back and the batch
 * written again with `INSERT ... ON CONFLICT DO NOTHING`, which skips them. Method "insert"
 * always upserts. Two batches may be written at once, on two connections
 * (`concurrentWrites`): one is copied in while the other commits; the unique key makes the
 * order in which they land irrelevant, and the runtime commits offsets in batch order.
 *
 * Mode jsonb: the value must be JSON text (any content type; PostgreSQL checks it), stored
 * in `valueColumn`. Mode columns: the value must be a JSON object; `columns` maps table
 * columns to its top-level fields, converted to the columns' types by PostgreSQL
 * (`json_populate_recordset`). A record PostgreSQL refuses (data exception, constraint) is
 * a record error, not retriable: dead-lettered at once. Connection problems and a missing
 * table are target errors: retried until they go away.
 */
import { finished } from "node:stream/promises";
import type { Pool, PoolClient } from "pg";
import type { FieldReader } from "../connect-config.ts";
import { SinkError, type SinkConnector, type SinkRecord } from "../connector.ts";
import { encodeCopyRows } from "./copy-rows.ts";
import type { Logger } from "../../logger.ts";

const META = ["src_topic", "src_partition", "src_offset", "src_key", "src_timestamp"] as const;

export interface PostgresSinkOptions {
  connection: string;
  table: string;
  tables: Record<string, string> | null;
  mode: "jsonb" | "columns";
  valueColumn: string;
  columns: Record<string, string> | null;
  createTable: boolean;
  method: "copy" | "insert";
}

export function postgresSinkOptions(f: FieldReader, topics: string[]): PostgresSinkOptions {
  const mode = f.oneOf("mode", ["jsonb", "columns"] as const, "jsonb");
  const columns = f.stringMap("columns");
  if (mode === "columns" && (columns === null || Object.keys(columns).length === 0)) f.fail("columns", 'mode "columns" needs a map of table columns to JSON fields, like { amount: amount, customer: customerId }');
  if (mode === "jsonb" && columns !== null) f.fail("columns", 'only for mode "columns" (mode "jsonb" stores the whole value in valueColumn)');
  const tables = f.stringMap("tables");
  if (tables) for (const t of topics) if (!tables[t]) f.fail("tables", `no table for topic "${t}": map every topic of "topics"`);
  const createTable = f.bool("createTable", mode === "jsonb");
  if (createTable && mode === "columns") f.fail("createTable", 'mode "columns" writes into a table you created (its column types are yours): set createTable: false');
  return {
    connection: f.string("connection"),
    table: f.string("table", "{topic}")!,
    tables,
    mode,
    valueColumn: f.string("valueColumn", "value")!,
    columns,
    createTable,
    method: f.oneOf("method", ["copy", "insert"] as const, "copy"),
  };
}

export function quoteIdent(name: string): string {
  return name
    .split(".")
    .map((part) => `"${part.replace(/"/g, '""')}"`)
    .join(".");
}

/** PostgreSQL error classes that mean "this data", not "this connection" (SQLSTATE 22xxx, 23xxx). */
function isDataError(code: string | undefined): boolean {
  return code !== undefined && (code.startsWith("22") || code.startsWith("23"));
}

export class PostgresSink implements SinkConnector {
  readonly #options: PostgresSinkOptions;
  readonly #logger: Logger;
  readonly #name: string;
  /** Two transactions at once: a batch is copied in while the one before it commits (the unique key makes their order irrelevant). */
  readonly concurrentWrites = 2;
  #pool: Pool | undefined;
  /** Per table, its preparation (create, check): once, shared by concurrent writes. */
  readonly #ready = new Map<string, Promise<void>>();
  #copyFrom: typeof import("pg-copy-streams").from | undefined;

  constructor(name: string, options: PostgresSinkOptions, logger: Logger) {
    this.#name = name;
    this.#options = options;
    this.#logger = logger;
  }

  tableFor(topic: string): string {
    if (this.#options.tables) return this.#options.tables[topic]!;
    return this.#options.table.replace("{topic}", topic.replace(/[.-]/g, "_"));
  }

  async start(): Promise<void> {
    const pgModule = "pg"; // loaded on use, only by processes that run a PostgreSQL connector
    const pg = ((await import(pgModule)) as { default: typeof import("pg") }).default;
    if (this.#options.mode === "jsonb" && this.#options.method === "copy") {
      const copyModule = "pg-copy-streams";
      this.#copyFrom = ((await import(copyModule)) as typeof import("pg-copy-streams")).from;
    }
    this.#pool = new pg.Pool({ connectionString: this.#options.connection, max: this.concurrentWrites, application_name: `tributary-connect:${this.#name}` });
    this.#pool.on("error", (err) => this.#logger.warn("connect.postgres.idle_client_error", { connector: this.#name, error: err.message }));
    // Reach the server now: a wrong connection string shows in the status at start.
    await this.#withClient(async (c) => {
      await c.query("SELECT 1");
    });
  }

  async stop(): Promise<void> {
    await this.#pool?.end();
    this.#pool = undefined;
  }

  async write(records: SinkRecord[]): Promise<void> {
    const byTable = this.#byTable(records);
    await this.#withClient(async (c) => {
      for (const table of byTable.keys()) await this.#prepare(c, table);
      const copy = this.#options.mode === "jsonb" && this.#options.method === "copy";
      try {
        if (copy && byTable.size === 1) {
          // One statement is its own transaction: no BEGIN and COMMIT round trips.
          const [[table, rows]] = byTable;
          await this.#copy(c, table, rows);
        } else {
          await this.#transaction(c, async () => {
            for (const [table, rows] of byTable) await (copy ? this.#copy(c, table, rows) : this.#insert(c, table, rows));
          });
        }
      } catch (err) {
        if (!copy || (err as { code?: string }).code !== "23505") throw err;
        // Rows of this batch are there already (a redelivery after a crash): upsert, skipping them.
        this.#logger.info("connect.postgres.redelivered_batch", { connector: this.#name, records: records.length });
        await this.#transaction(c, async () => {
          for (const [table, rows] of byTable) await this.#insert(c, table, rows);
        });
      }
    });
  }

  /** The records per table, in their order (the table looked up once per run of one topic). */
  #byTable(records: SinkRecord[]): Map<string, SinkRecord[]> {
    const byTable = new Map<string, SinkRecord[]>();
    let topic: string | undefined;
    let list: SinkRecord[] = [];
    for (const r of records) {
      if (r.topic !== topic) {
        topic = r.topic;
        const table = this.tableFor(topic);
        const known = byTable.get(table);
        if (known) list = known;
        else byTable.set(table, (list = []));
      }
      list.push(r);
    }
    return byTable;
  }

  async #transaction(c: PoolClient, body: () => Promise<void>): Promise<void> {
    await c.query("BEGIN");
    try {
      await body();
      await c.query("COMMIT");
    } catch (err) {
      await c.query("ROLLBACK").catch((rollbackErr: Error) => this.#logger.warn("connect.postgres.rollback_failed", { connector: this.#name, error: rollbackErr.message }));
      throw err;
    }
  }

  /** COPY FROM STDIN in text format (copy-rows.ts), the batch's rows as one buffer. */
  async #copy(c: PoolClient, table: string, rows: SinkRecord[]): Promise<void> {
    const body = encodeCopyRows(rows);
    const columns = [...META, this.#options.valueColumn].map(quoteIdent).join(", ");
    const stream = c.query(this.#copyFrom!(`COPY ${quoteIdent(table)} (${columns}) FROM STDIN`));
    stream.end(body);
    await finished(stream);
  }

  async #insert(c: PoolClient, table: string, rows: SinkRecord[]): Promise<void> {
    const t = quoteIdent(table);
    const meta = META.map(quoteIdent).join(", ");
    if (this.#options.mode === "jsonb") {
      const topics: string[] = [];
      const partitions: number[] = [];
      const offsets: string[] = [];
      const keys: (string | null)[] = [];
      const times: string[] = [];
      const values: (string | null)[] = [];
      for (const r of rows) {
        topics.push(r.topic);
        partitions.push(r.partition);
        offsets.push(String(r.offset));
        keys.push(r.key);
        times.push(new Date(r.timestamp).toISOString());
        values.push(r.value === null ? null : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength).toString("utf8"));
      }
      await c.query(
        `INSERT INTO ${t} (${meta}, ${quoteIdent(this.#options.valueColumn)}) SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[], $5::timestamptz[], $6::jsonb[]) ON CONFLICT DO NOTHING`,
        [topics, partitions, offsets, keys, times, values],
      );
      return;
    }
    const columns = this.#options.columns!;
    const objects = rows.map((r) => {
      const row: Record<string, unknown> = { src_topic: r.topic, src_partition: r.partition, src_offset: r.offset, src_key: r.key, src_timestamp: new Date(r.timestamp).toISOString() };
      if (r.value !== null) {
        let value: unknown;
        try {
          value = JSON.parse(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength).toString("utf8"));
        } catch (cause) {
          throw new SinkError("records", `${r.topic}/${r.partition}@${r.offset}: the value is not JSON (mode "columns" needs a JSON object)`, false, { cause });
        }
        if (typeof value !== "object" || value === null || Array.isArray(value)) throw new SinkError("records", `${r.topic}/${r.partition}@${r.offset}: the value is not a JSON object (mode "columns")`, false);
        for (const [column, field] of Object.entries(columns)) row[column] = (value as Record<string, unknown>)[field] ?? null;
      }
      return row;
    });
    const names = [...META, ...Object.keys(columns)].map(quoteIdent).join(", ");
    await c.query(`INSERT INTO ${t} (${names}) SELECT ${names} FROM json_populate_recordset(null::${t}, $1::json) ON CONFLICT DO NOTHING`, [JSON.stringify(objects)]);
  }

  /** Creates the table (jsonb mode with createTable) or checks that it can hold the rows exactly once. */
  #prepare(c: PoolClient, table: string): Promise<void> {
    let ready = this.#ready.get(table);
    if (!ready) {
      ready = this.#prepareTable(c, table);
      this.#ready.set(table, ready);
      const failed = ready;
      failed.catch(() => this.#ready.get(table) === failed && this.#ready.delete(table)); // tried again by the next write
    }
    return ready;
  }

  async #prepareTable(c: PoolClient, table: string): Promise<void> {
    const t = quoteIdent(table);
    if (this.#options.createTable) {
      await c.query(
        `CREATE TABLE IF NOT EXISTS ${t} (src_topic text NOT NULL, src_partition integer NOT NULL, src_offset bigint NOT NULL, src_key text, src_timestamp timestamptz NOT NULL, ${quoteIdent(this.#options.valueColumn)} jsonb, PRIMARY KEY (src_topic, src_partition, src_offset))`,
      );
    }
    const unique = await c.query(
      `SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
       WHERE i.indrelid = to_regclass($1) AND i.indisunique GROUP BY i.indexrelid
       HAVING array_agg(a.attname::text ORDER BY a.attname::text) = ARRAY['src_offset','src_partition','src_topic']`,
      [t],
    );
    if (unique.rowCount === 0) {
      throw new SinkError("target", `table ${table} does not exist or has no UNIQUE (src_topic, src_partition, src_offset): create it (see docs/connect.md) or set createTable: true`);
    }
  }

  async #withClient<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const pool = this.#pool;
    if (!pool) throw new SinkError("target", "the PostgreSQL sink is not started");
    let client: PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw new SinkError("target", `cannot connect to PostgreSQL: ${(err as Error).message}`, true, { cause: err });
    }
    let broken: Error | undefined;
    // The server may drop the connection between two queries (a restart): pg reports that as an `error` event on the client, not on a query.
    const onError = (err: Error) => {
      broken = err;
      this.#logger.warn("connect.postgres.connection_error", { connector: this.#name, error: err.message });
    };
    client.on("error", onError);
    try {
      return await fn(client);
    } catch (err) {
      if (err instanceof SinkError) throw err;
      const code = (err as { code?: string }).code;
      if (isDataError(code)) throw new SinkError("records", `PostgreSQL refused the rows: ${(err as Error).message} [${code}]`, false, { cause: err });
      broken = err as Error;
      throw new SinkError("target", `PostgreSQL: ${(err as Error).message}${code ? ` [${code}]` : ""}`, true, { cause: err });
    } finally {
      client.off("error", onError);
      client.release(broken);
    }
  }
}
