-- aurora-sync's own state, in its own database on the target cluster (AURORA_SYNC_STATE_DB).
-- The checkpoint is written in the same transaction as the data it covers.

CREATE TABLE IF NOT EXISTS checkpoint (
    pipeline        VARCHAR(64) NOT NULL,
    binlog_file     VARCHAR(255) NOT NULL,
    binlog_pos      BIGINT UNSIGNED NOT NULL,
    gtid            TEXT NULL,
    source_commit_ts DATETIME(6) NULL,
    updated_at      DATETIME(6) NOT NULL,
    PRIMARY KEY (pipeline)
) DEFAULT CHARSET=utf8mb4;

-- One row per pipeline: what the daemon is doing and, when halted, why.
CREATE TABLE IF NOT EXISTS pipeline_state (
    pipeline        VARCHAR(64) NOT NULL,
    state           VARCHAR(32) NOT NULL,
    detail          TEXT NULL,
    last_error      TEXT NULL,
    last_error_fix  TEXT NULL,
    updated_at      DATETIME(6) NOT NULL,
    PRIMARY KEY (pipeline)
) DEFAULT CHARSET=utf8mb4;

-- One row per snapshot run: where the stream must start and where the copy ended.
CREATE TABLE IF NOT EXISTS bootstrap_run (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    pipeline        VARCHAR(64) NOT NULL,
    state           VARCHAR(16) NOT NULL,
    method          VARCHAR(32) NOT NULL,
    start_file      VARCHAR(255) NOT NULL,
    start_pos       BIGINT UNSIGNED NOT NULL,
    start_gtid      TEXT NULL,
    end_file        VARCHAR(255) NULL,
    end_pos         BIGINT UNSIGNED NULL,
    end_gtid        TEXT NULL,
    tables          TEXT NULL,
    started_at      DATETIME(6) NOT NULL,
    finished_at     DATETIME(6) NULL,
    PRIMARY KEY (id),
    KEY idx_bootstrap_run_pipeline (pipeline, id)
) DEFAULT CHARSET=utf8mb4;

-- Per source table of a run: the last primary key copied, committed with the chunk's rows.
CREATE TABLE IF NOT EXISTS bootstrap_progress (
    run_id          BIGINT UNSIGNED NOT NULL,
    source_table    VARCHAR(128) NOT NULL,
    last_key        TEXT NULL,
    rows_copied     BIGINT UNSIGNED NOT NULL DEFAULT 0,
    rows_estimated  BIGINT UNSIGNED NULL,
    chunks          BIGINT UNSIGNED NOT NULL DEFAULT 0,
    done            TINYINT(1) NOT NULL DEFAULT 0,
    updated_at      DATETIME(6) NOT NULL,
    PRIMARY KEY (run_id, source_table)
) DEFAULT CHARSET=utf8mb4;

-- Throttle settings an operator may change while a bootstrap runs.
CREATE TABLE IF NOT EXISTS throttle (
    pipeline            VARCHAR(64) NOT NULL,
    max_rows_per_second INT UNSIGNED NULL,
    max_threads_running INT UNSIGNED NULL,
    paused              TINYINT(1) NOT NULL DEFAULT 0,
    updated_at          DATETIME(6) NOT NULL,
    PRIMARY KEY (pipeline)
) DEFAULT CHARSET=utf8mb4;

-- Changes an operator chose to skip (AURORA_SYNC_DEAD_LETTER=true); validation reports them.
CREATE TABLE IF NOT EXISTS dead_letter (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    pipeline        VARCHAR(64) NOT NULL,
    source_table    VARCHAR(128) NOT NULL,
    row_key         TEXT NOT NULL,
    binlog_file     VARCHAR(255) NOT NULL,
    binlog_pos      BIGINT UNSIGNED NOT NULL,
    reason          TEXT NOT NULL,
    created_at      DATETIME(6) NOT NULL,
    PRIMARY KEY (id)
) DEFAULT CHARSET=utf8mb4;

-- The results of validation runs, so cutover can require a recent clean one.
CREATE TABLE IF NOT EXISTS validation_run (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    pipeline        VARCHAR(64) NOT NULL,
    started_at      DATETIME(6) NOT NULL,
    finished_at     DATETIME(6) NULL,
    binlog_file     VARCHAR(255) NULL,
    binlog_pos      BIGINT UNSIGNED NULL,
    clean           TINYINT(1) NULL,
    summary         JSON NULL,
    PRIMARY KEY (id)
) DEFAULT CHARSET=utf8mb4;

-- The cutover record: positions, timings and outcome.
CREATE TABLE IF NOT EXISTS cutover (
    id                  BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    pipeline            VARCHAR(64) NOT NULL,
    state               VARCHAR(16) NOT NULL,
    freeze_method       VARCHAR(16) NOT NULL,
    freeze_started_at   DATETIME(6) NULL,
    freeze_ended_at     DATETIME(6) NULL,
    final_file          VARCHAR(255) NULL,
    final_pos           BIGINT UNSIGNED NULL,
    final_gtid          TEXT NULL,
    summary             JSON NULL,
    reason              TEXT NULL,
    started_at          DATETIME(6) NOT NULL,
    finished_at         DATETIME(6) NULL,
    PRIMARY KEY (id)
) DEFAULT CHARSET=utf8mb4;
