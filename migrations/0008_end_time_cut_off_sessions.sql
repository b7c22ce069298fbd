-- Custom migration (drizzle-kit generate --custom): the session cut-off moves from a time
-- (users.tokens_valid_after, kept_session_id) to a counter (users.session_generation). Sessions
-- the old cut-off had already ended are ended here, before 0009 drops its columns, so that no
-- session killed by a logout, a password or a role change comes back to life.
UPDATE `sessions` s JOIN `users` u ON u.`id` = s.`user_id`
SET s.`ended_at` = CURRENT_TIMESTAMP(3), s.`expires_at` = LEAST(s.`expires_at`, CURRENT_TIMESTAMP(3))
WHERE s.`ended_at` IS NULL AND u.`tokens_valid_after` IS NOT NULL AND s.`created_at` <= u.`tokens_valid_after`
  AND (u.`kept_session_id` IS NULL OR u.`kept_session_id` <> s.`id`);
