-- gateway_db: the API gateway's users, sessions and API keys.
-- Target schemas use only what TiDB supports and declare no foreign keys: TiDB does not
-- enforce them by default, and aurora-sync orders its writes without relying on them.

CREATE TABLE IF NOT EXISTS users (
    id                          INT UNSIGNED NOT NULL,
    email                       VARCHAR(255) NOT NULL,
    password_hash               VARCHAR(255) NOT NULL,
    name                        VARCHAR(255) NOT NULL,
    -- profile
    display_name                VARCHAR(255) NULL,
    avatar_url                  VARCHAR(1024) NULL,
    bio                         TEXT NULL,
    timezone                    VARCHAR(64) NOT NULL DEFAULT 'UTC',
    locale                      VARCHAR(16) NOT NULL DEFAULT 'en',
    -- email verification
    email_verified              TINYINT(1) NOT NULL DEFAULT 0,
    email_verified_at           DATETIME NULL,
    email_verification_token    VARCHAR(64) NULL,
    -- activity
    is_active                   TINYINT(1) NOT NULL DEFAULT 1,
    status                      ENUM('active', 'suspended', 'deleted') NOT NULL DEFAULT 'active',
    last_login_at               DATETIME NULL,
    created_at                  DATETIME NOT NULL,
    updated_at                  DATETIME NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_users_email (email),
    KEY idx_users_status (status)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS sessions (
    id              CHAR(64) NOT NULL,
    user_id         INT UNSIGNED NOT NULL,
    ip_address      VARCHAR(45) NULL,
    user_agent      VARCHAR(512) NULL,
    expires_at      DATETIME NOT NULL,
    created_at      DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    KEY idx_sessions_user (user_id),
    KEY idx_sessions_expires (expires_at)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS api_keys (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id         INT UNSIGNED NOT NULL,
    name            VARCHAR(255) NOT NULL,
    key_prefix      CHAR(8) NOT NULL,
    key_hash        CHAR(64) NOT NULL,
    scopes          JSON NULL,
    last_used_at    DATETIME NULL,
    expires_at      DATETIME NULL,
    revoked_at      DATETIME NULL,
    created_at      DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY uq_api_keys_hash (key_hash),
    KEY idx_api_keys_user (user_id)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
