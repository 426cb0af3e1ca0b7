-- config_db: the config service's application configuration. aurora has no such table;
-- the service fills it after the move (generic routes can copy tables into it).

CREATE TABLE IF NOT EXISTS app_config (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    service         VARCHAR(64) NOT NULL,
    environment     VARCHAR(32) NOT NULL DEFAULT 'production',
    config_key      VARCHAR(191) NOT NULL,
    config_value    JSON NOT NULL,
    description     VARCHAR(512) NULL,
    is_secret       TINYINT(1) NOT NULL DEFAULT 0,
    version         INT UNSIGNED NOT NULL DEFAULT 1,
    created_at      DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at      DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY uq_app_config (service, environment, config_key)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS feature_flags (
    name            VARCHAR(128) NOT NULL,
    enabled         TINYINT(1) NOT NULL DEFAULT 0,
    rollout_percent TINYINT UNSIGNED NOT NULL DEFAULT 0,
    rules           JSON NULL,
    updated_at      DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (name)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
