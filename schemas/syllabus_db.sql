-- syllabus_db: the syllabus service's semesters and syllabus records.

CREATE TABLE IF NOT EXISTS semesters (
    id              INT UNSIGNED NOT NULL,
    user_id         INT UNSIGNED NOT NULL,
    name            VARCHAR(100) NOT NULL,
    start_date      DATE NULL,
    end_date        DATE NULL,
    is_current      TINYINT(1) NOT NULL DEFAULT 0,
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    PRIMARY KEY (id),
    KEY idx_semesters_user (user_id)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS syllabus (
    id              INT UNSIGNED NOT NULL,
    subject_id      INT UNSIGNED NOT NULL,
    semester_id     INT UNSIGNED NOT NULL,
    user_id         INT UNSIGNED NOT NULL,
    title           VARCHAR(255) NOT NULL,
    content         MEDIUMTEXT NULL,
    file_id         CHAR(36) NULL,
    status          ENUM('draft', 'published', 'archived') NOT NULL DEFAULT 'published',
    version         INT UNSIGNED NOT NULL DEFAULT 1,
    created_at      DATETIME(3) NOT NULL,
    updated_at      DATETIME(3) NOT NULL,
    PRIMARY KEY (id),
    KEY idx_syllabus_subject (subject_id),
    KEY idx_syllabus_semester (semester_id),
    KEY idx_syllabus_user (user_id),
    KEY idx_syllabus_file (file_id)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
