ALTER TABLE `users` DROP COLUMN `tokens_valid_after`;--> statement-breakpoint
ALTER TABLE `users` DROP COLUMN `kept_session_id`;