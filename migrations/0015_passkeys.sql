CREATE TABLE `passkeys` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`user_id` bigint unsigned NOT NULL,
	`credential_id` varchar(255) NOT NULL,
	`public_key` varchar(2048) NOT NULL,
	`counter` bigint unsigned NOT NULL DEFAULT 0,
	`transports` varchar(100) NOT NULL DEFAULT '',
	`backup_eligible` boolean NOT NULL DEFAULT false,
	`backed_up` boolean NOT NULL DEFAULT false,
	`aaguid` char(36) NOT NULL,
	`user_handle` varchar(64) NOT NULL,
	`name` varchar(80) NOT NULL,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`last_used_at` datetime(3),
	CONSTRAINT `passkeys_id` PRIMARY KEY(`id`),
	CONSTRAINT `passkeys_credential_id_unique` UNIQUE(`credential_id`)
);
--> statement-breakpoint
CREATE TABLE `webauthn_challenges` (
	`challenge_hash` char(64) NOT NULL,
	`purpose` varchar(8) NOT NULL,
	`user_id` bigint unsigned,
	`mfa_token_hash` char(64),
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`expires_at` datetime(3) NOT NULL,
	CONSTRAINT `webauthn_challenges_challenge_hash` PRIMARY KEY(`challenge_hash`)
);
--> statement-breakpoint
ALTER TABLE `passkeys` ADD CONSTRAINT `passkeys_user_id_users_id_fk` FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `webauthn_challenges` ADD CONSTRAINT `webauthn_challenges_user_id_users_id_fk` FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX `passkeys_user_id_id_idx` ON `passkeys` (`user_id`,`id`);--> statement-breakpoint
CREATE INDEX `webauthn_challenges_user_id_idx` ON `webauthn_challenges` (`user_id`);--> statement-breakpoint
CREATE INDEX `webauthn_challenges_expires_at_idx` ON `webauthn_challenges` (`expires_at`);