import type {SqlDb} from '../store/sql-db.js'
import {nowMsSql} from '../store/store-clock.js'

/** One row of `intake_claims` (migration 5): who claimed a dropped file, and how far its claim got. */
export interface IntakeClaimRow {
  path: string
  identity: string
  claim_id: string
  node_id: string
  claimed_at: number
  settling_at: number | null
  settled_at: number | null
}

/** What recovery may do with a claim directory of `processing/`. */
export type ClaimOwnership = 'mine' | 'adopted' | 'live-owner' | 'taken'

/**
 * The intake claims of a drop directory shared by several daemons (nodes) on one store. A dropped file
 * becomes a claim through one row keyed by (path relative to the inbox, identity), inserted BEFORE the first
 * rename: the unique key lets exactly one node win; the others see no change and touch nothing. Every
 * hand-over (a dead node's claim adopted, a claim taken for settling, a settled file dropped again) is one
 * conditional UPDATE, so it happens once. A node is alive while its `cluster_nodes` heartbeat is younger
 * than lease_ttl (on the store's clock); this node counts as alive whatever its row says. On SQLite (one
 * node) the same statements run and always find this node alone.
 */
export class IntakeClaims {
  constructor(
    private readonly db: SqlDb,
    /** This daemon's node id. */
    readonly nodeId: string,
    /** lease_ttl in ms: a node silent for longer is dead. */
    private readonly leaseTtlMs: () => number,
  ) {}

  private get now(): string {
    return nowMsSql(this.db.engine)
  }

  /** `node_id` names a node that is neither this one nor alive (SQL, two parameters: this node, the ttl). */
  private get deadOwner(): string {
    return `node_id <> ? AND node_id NOT IN (SELECT node_id FROM cluster_nodes WHERE state <> 'stopped' AND heartbeat_at >= ${this.now} - ?)`
  }

  /**
   * Claim a dropped file before it is moved: true when this node won it. A row already there means another
   * node has it — unless that claim was settled (the same file dropped again, e.g. moved back from
   * processed/), or its node died before the file left the inbox, or it is this node's own unsettled row
   * for a file still in the inbox (an earlier claim whose rename failed, or whose COMMIT was lost with the
   * connection, and whose row could not be removed): then the row is taken over, once.
   */
  claim(path: string, identity: string, claimId: string): boolean {
    return this.db.transaction(() => {
      const inserted = this.db.run(`INSERT INTO intake_claims (path, identity, claim_id, node_id, claimed_at) VALUES (?, ?, ?, ?, ${this.now}) ON CONFLICT DO NOTHING`, [path, identity, claimId, this.nodeId])
      if (inserted.changes === 1) return true
      const taken = this.db.run(
        `UPDATE intake_claims SET claim_id = ?, node_id = ?, claimed_at = ${this.now}, settling_at = NULL, settled_at = NULL WHERE path = ? AND identity = ? AND (settled_at IS NOT NULL OR node_id = ? OR (${this.deadOwner}))`,
        [claimId, this.nodeId, path, identity, this.nodeId, this.nodeId, this.leaseTtlMs()],
      )
      return taken.changes === 1
    })
  }

  /** Whether a claim id is free: no claim row and no job carries it (ids are short; nodes draw them independently). */
  idFree(claimId: string): boolean {
    return this.db.get('SELECT 1 AS x FROM intake_claims WHERE claim_id = ?', [claimId]) === undefined && this.db.get('SELECT 1 AS x FROM jobs WHERE id = ? OR intake_id = ?', [claimId, claimId]) === undefined
  }

  /** A claim undone (its files back in the inbox, its directory gone): the row goes, if it is still this node's. */
  release(claimId: string): void {
    this.db.run('DELETE FROM intake_claims WHERE claim_id = ? AND node_id = ?', [claimId, this.nodeId])
  }

  row(claimId: string): IntakeClaimRow | undefined {
    return this.db.get<IntakeClaimRow>('SELECT * FROM intake_claims WHERE claim_id = ?', [claimId])
  }

  /**
   * Recovery's question about a claim directory: this node's own claim, one adopted now from a dead node
   * (exactly once: a conditional UPDATE of its node_id), a live node's (never touched), or taken by another
   * node meanwhile. A directory without a row (made before claim rows existed, or its row pruned) is adopted
   * by inserting one; `path`/`identity` are what its record says.
   */
  ownership(claimId: string, path: string, identity: string): ClaimOwnership {
    return this.db.transaction(() => {
      const row = this.row(claimId)
      if (!row) {
        const inserted = this.db.run(`INSERT INTO intake_claims (path, identity, claim_id, node_id, claimed_at) VALUES (?, ?, ?, ?, ${this.now}) ON CONFLICT DO NOTHING`, [path, identity, claimId, this.nodeId])
        return inserted.changes === 1 ? 'adopted' : 'taken'
      }
      if (row.node_id === this.nodeId) return 'mine'
      const adopted = this.db.run(`UPDATE intake_claims SET node_id = ? WHERE claim_id = ? AND node_id = ? AND ${this.deadOwner}`, [this.nodeId, claimId, row.node_id, this.nodeId, this.leaseTtlMs()])
      return adopted.changes === 1 ? 'adopted' : 'live-owner'
    })
  }

  /**
   * Take a claim whose jobs have all finished for settling: true for exactly one node — this one when the
   * claim is not being settled yet, or is being settled by this node (a settle resumed) or by a dead one.
   * A claim without a row (one made before claim rows existed) is settled by whoever asks.
   */
  takeForSettling(claimId: string): boolean {
    if (!this.row(claimId)) return true
    const taken = this.db.run(
      `UPDATE intake_claims SET node_id = ?, settling_at = ${this.now} WHERE claim_id = ? AND settled_at IS NULL AND (settling_at IS NULL OR node_id = ? OR (${this.deadOwner}))`,
      [this.nodeId, claimId, this.nodeId, this.nodeId, this.leaseTtlMs()],
    )
    return taken.changes === 1
  }

  /** The claim left processing/ (settled, or its files removed). */
  settled(claimId: string): void {
    this.db.run(`UPDATE intake_claims SET settled_at = ${this.now} WHERE claim_id = ? AND settled_at IS NULL`, [claimId])
  }

  /**
   * At start: this node's unsettled claims whose directory is gone (a crash between the row and the rename,
   * or after the files moved on but before the row said so) are closed, so the file can be claimed again.
   */
  closeMissing(present: ReadonlySet<string>): number {
    const open = this.db.all<{claim_id: string}>('SELECT claim_id FROM intake_claims WHERE node_id = ? AND settled_at IS NULL', [this.nodeId])
    let closed = 0
    for (const {claim_id: id} of open) {
      if (present.has(id)) continue
      this.settled(id)
      closed++
    }
    return closed
  }

  /**
   * Bounded housekeeping (at most `limit` rows a call): rows of claims settled more than `keepMs` ago, and of
   * claims never settled whose node has been silent for more than `keepMs` (its directory, if any, is
   * adopted by recovery without a row). Returns the rows removed.
   */
  prune(keepMs: number, limit = 1000): number {
    const old = `${this.now} - ?`
    return this.db.run(
      `DELETE FROM intake_claims WHERE claim_id IN (SELECT claim_id FROM intake_claims WHERE (settled_at IS NOT NULL AND settled_at < ${old}) OR (settled_at IS NULL AND claimed_at < ${old} AND node_id <> ? AND node_id NOT IN (SELECT node_id FROM cluster_nodes WHERE heartbeat_at >= ${old})) LIMIT ?)`,
      [keepMs, keepMs, this.nodeId, keepMs, limit],
    ).changes
  }
}
