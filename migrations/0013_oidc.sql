CREATE TABLE `federated_identities` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`user_id` bigint unsigned NOT NULL,
	`provider` varchar(32) NOT NULL,
	`issuer` varchar(255) NOT NULL,
	`subject` varchar(255) NOT NULL,
	`email` varchar(254),
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`last_used_at` datetime(3),
	CONSTRAINT `federated_identities_id` PRIMARY KEY(`id`),
	CONSTRAINT `federated_identities_issuer_subject_unique` UNIQUE(`issuer`,`subject`)
);
--> statement-breakpoint
CREATE TABLE `oidc_exchange_codes` (
	`code_hash` char(64) NOT NULL,
	`provider` varchar(32) NOT NULL,
	`issuer` varchar(255) NOT NULL,
	`subject` varchar(255) NOT NULL,
	`email` varchar(254),
	`email_verified` boolean NOT NULL DEFAULT false,
	`name` varchar(80),
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`expires_at` datetime(3) NOT NULL,
	`spent_at` datetime(3),
	CONSTRAINT `oidc_exchange_codes_code_hash` PRIMARY KEY(`code_hash`)
);
--> statement-breakpoint
CREATE TABLE `oidc_logins` (
	`state_hash` char(64) NOT NULL,
	`provider` varchar(32) NOT NULL,
	`redirect_uri` varchar(2048) NOT NULL,
	`callback_uri` varchar(2048) NOT NULL,
	`nonce` varchar(128) NOT NULL,
	`code_verifier` varchar(128) NOT NULL,
	`link_user_id` bigint unsigned,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`expires_at` datetime(3) NOT NULL,
	`spent_at` datetime(3),
	CONSTRAINT `oidc_logins_state_hash` PRIMARY KEY(`state_hash`)
);
--> statement-breakpoint
ALTER TABLE `users` MODIFY COLUMN `password_hash` varchar(255);--> statement-breakpoint
ALTER TABLE `federated_identities` ADD CONSTRAINT `federated_identities_user_id_users_id_fk` FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `oidc_logins` ADD CONSTRAINT `oidc_logins_link_user_id_users_id_fk` FOREIGN KEY (`link_user_id`) REFERENCES `users`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX `federated_identities_user_id_idx` ON `federated_identities` (`user_id`);--> statement-breakpoint
CREATE INDEX `oidc_exchange_codes_expires_at_idx` ON `oidc_exchange_codes` (`expires_at`);--> statement-breakpoint
CREATE INDEX `oidc_logins_link_user_id_idx` ON `oidc_logins` (`link_user_id`);--> statement-breakpoint
CREATE INDEX `oidc_logins_expires_at_idx` ON `oidc_logins` (`expires_at`);