CREATE TABLE `one_time_tokens` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`purpose` enum('password_reset','email_verification') NOT NULL,
	`user_id` bigint unsigned NOT NULL,
	`email` varchar(254) NOT NULL,
	`selector` char(32) NOT NULL,
	`verifier_hash` char(64) NOT NULL,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`expires_at` datetime(3) NOT NULL,
	`spent_at` datetime(3),
	CONSTRAINT `one_time_tokens_id` PRIMARY KEY(`id`),
	CONSTRAINT `one_time_tokens_selector_unique` UNIQUE(`selector`)
);
--> statement-breakpoint
ALTER TABLE `users` ADD `email_verified_at` datetime(3);--> statement-breakpoint
ALTER TABLE `one_time_tokens` ADD CONSTRAINT `one_time_tokens_user_id_users_id_fk` FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX `one_time_tokens_user_purpose_created_idx` ON `one_time_tokens` (`user_id`,`purpose`,`created_at`);--> statement-breakpoint
CREATE INDEX `one_time_tokens_expires_at_idx` ON `one_time_tokens` (`expires_at`);