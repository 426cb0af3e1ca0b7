-- file_db: the file service's files and repositories.

CREATE TABLE IF NOT EXISTS files (
    -- Deterministic for migrated files (a UUIDv5 of the source row), so a replay makes the
    -- same row; new files of the service may use any UUID.
    id                  CHAR(36) NOT NULL,
    owner_id            INT UNSIGNED NOT NULL,
    file_name           VARCHAR(255) NOT NULL,
    file_url            VARCHAR(2048) NOT NULL,
    mime_type           VARCHAR(127) NOT NULL DEFAULT 'application/octet-stream',
    storage_provider    VARCHAR(32) NOT NULL DEFAULT 'http',
    size_bytes          BIGINT UNSIGNED NULL,
    checksum_sha256     CHAR(64) NULL,
    checksum_status     ENUM('pending', 'verified', 'missing', 'failed') NOT NULL DEFAULT 'pending',
    checksum_checked_at DATETIME NULL,
    checksum_error      VARCHAR(512) NULL,
    source_table        VARCHAR(64) NULL,
    source_id           BIGINT UNSIGNED NULL,
    created_at          DATETIME NOT NULL,
    updated_at          DATETIME NOT NULL,
    PRIMARY KEY (id),
    KEY idx_files_owner (owner_id),
    KEY idx_files_checksum_status (checksum_status),
    KEY idx_files_source (source_table, source_id)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS repositories (
    id                  INT UNSIGNED NOT NULL,
    user_id             INT UNSIGNED NOT NULL,
    subject_id          INT UNSIGNED NULL,
    name                VARCHAR(255) NOT NULL,
    url                 VARCHAR(1024) NOT NULL,
    provider            ENUM('github', 'gitlab', 'bitbucket', 'other') NOT NULL DEFAULT 'github',
    is_private          TINYINT(1) NOT NULL DEFAULT 0,
    stars               INT UNSIGNED NOT NULL DEFAULT 0,
    -- added by the file service
    branch              VARCHAR(255) NOT NULL DEFAULT 'main',
    sync_status         ENUM('pending', 'syncing', 'synced', 'failed') NOT NULL DEFAULT 'pending',
    last_synced_at      DATETIME NULL,
    metadata            JSON NULL,
    is_encrypted        TINYINT(1) NOT NULL DEFAULT 0,
    encryption_key_id   VARCHAR(255) NULL,
    created_at          DATETIME NOT NULL,
    updated_at          DATETIME NOT NULL,
    PRIMARY KEY (id),
    KEY idx_repositories_user (user_id),
    KEY idx_repositories_subject (subject_id),
    KEY idx_repositories_sync (sync_status)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
