-- A Dokploy v0.30.2-shaped schema for tests (written from the Drizzle schema notes in
-- /work/shared/reference/dokploy-schema.md, not copied from Dokploy's migrations).
-- Routing tables have every column, including the secret ones, so tests can prove the
-- reader never selects them. Auth tables ("user", organization) keep only what the
-- ownership chain needs. The fixtures supply ids, appName and createdAt (Dokploy has no
-- database defaults for them).

CREATE TYPE "applicationStatus" AS ENUM ('idle', 'running', 'done', 'error');
CREATE TYPE "buildType" AS ENUM (
    'dockerfile', 'heroku_buildpacks', 'paketo_buildpacks', 'nixpacks', 'static', 'railpack'
);
CREATE TYPE "certificateType" AS ENUM ('letsencrypt', 'none', 'custom');
CREATE TYPE "composeType" AS ENUM ('docker-compose', 'stack');
CREATE TYPE "domainType" AS ENUM ('compose', 'application', 'preview');
CREATE TYPE "protocolType" AS ENUM ('tcp', 'udp');
CREATE TYPE "publishModeType" AS ENUM ('ingress', 'host');
CREATE TYPE "serverStatus" AS ENUM ('active', 'inactive');
CREATE TYPE "serverType" AS ENUM ('deploy', 'build');
CREATE TYPE "sourceType" AS ENUM ('docker', 'git', 'github', 'gitlab', 'bitbucket', 'gitea', 'drop');
CREATE TYPE "sourceTypeCompose" AS ENUM ('git', 'github', 'gitlab', 'bitbucket', 'gitea', 'raw');
CREATE TYPE "triggerType" AS ENUM ('push', 'tag');

CREATE TABLE "user" (
    "id" text PRIMARY KEY,
    "name" text NOT NULL DEFAULT '',
    "email" text NOT NULL UNIQUE,
    "email_verified" boolean NOT NULL DEFAULT false,
    "created_at" timestamp NOT NULL DEFAULT now(),
    "updated_at" timestamp NOT NULL DEFAULT now()
);

CREATE TABLE "organization" (
    "id" text PRIMARY KEY,
    "name" text NOT NULL,
    "slug" text UNIQUE,
    "logo" text,
    "created_at" timestamp NOT NULL DEFAULT now(),
    "metadata" text,
    "owner_id" text NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE
);

CREATE TABLE "project" (
    "projectId" text PRIMARY KEY,
    "name" text NOT NULL,
    "description" text,
    "createdAt" text NOT NULL,
    "organizationId" text NOT NULL REFERENCES "organization" ("id") ON DELETE CASCADE,
    "env" text NOT NULL DEFAULT ''
);

CREATE TABLE "environment" (
    "environmentId" text PRIMARY KEY,
    "name" text NOT NULL,
    "description" text,
    "createdAt" text NOT NULL,
    "env" text NOT NULL DEFAULT '',
    "projectId" text NOT NULL REFERENCES "project" ("projectId") ON DELETE CASCADE,
    "isDefault" boolean NOT NULL DEFAULT false
);

CREATE TABLE "ssh-key" (
    "sshKeyId" text PRIMARY KEY,
    "privateKey" text NOT NULL DEFAULT '',
    "publicKey" text NOT NULL,
    "name" text NOT NULL,
    "description" text,
    "createdAt" text NOT NULL,
    "lastUsedAt" text,
    "organizationId" text NOT NULL REFERENCES "organization" ("id") ON DELETE CASCADE
);

CREATE TABLE "server" (
    "serverId" text PRIMARY KEY,
    "name" text NOT NULL,
    "description" text,
    "ipAddress" text NOT NULL,
    "port" integer NOT NULL,
    "username" text NOT NULL DEFAULT 'root',
    "appName" text NOT NULL,
    "enableDockerCleanup" boolean NOT NULL DEFAULT false,
    "buildsConcurrency" integer NOT NULL DEFAULT 1,
    "createdAt" text NOT NULL,
    "organizationId" text NOT NULL REFERENCES "organization" ("id") ON DELETE CASCADE,
    "serverStatus" "serverStatus" NOT NULL DEFAULT 'active',
    "serverType" "serverType" NOT NULL DEFAULT 'deploy',
    "command" text NOT NULL DEFAULT '',
    "sshKeyId" text REFERENCES "ssh-key" ("sshKeyId") ON DELETE SET NULL,
    "metricsConfig" jsonb NOT NULL DEFAULT '{"server":{"type":"Remote","refreshRate":60,"port":4500,"token":"","urlCallback":"","cronJob":"","retentionDays":2,"thresholds":{"cpu":0,"memory":0}},"containers":{"refreshRate":60,"services":{"include":[],"exclude":[]}}}'::jsonb
);

CREATE TABLE "application" (
    "applicationId" text PRIMARY KEY,
    "name" text NOT NULL,
    "appName" text NOT NULL UNIQUE,
    "description" text,
    "env" text,
    "previewEnv" text,
    "watchPaths" text[],
    "previewBuildArgs" text,
    "previewBuildSecrets" text,
    "previewLabels" text[],
    "previewWildcard" text,
    "previewPort" integer DEFAULT 3000,
    "previewHttps" boolean NOT NULL DEFAULT false,
    "previewPath" text DEFAULT '/',
    "certificateType" "certificateType" NOT NULL DEFAULT 'none',
    "previewCustomCertResolver" text,
    "previewLimit" integer DEFAULT 3,
    "isPreviewDeploymentsActive" boolean DEFAULT false,
    "previewRequireCollaboratorPermissions" boolean DEFAULT true,
    "rollbackActive" boolean DEFAULT false,
    "buildArgs" text,
    "buildSecrets" text,
    "memoryReservation" text,
    "memoryLimit" text,
    "cpuReservation" text,
    "cpuLimit" text,
    "title" text,
    "enabled" boolean,
    "subtitle" text,
    "command" text,
    "args" text[],
    "icon" text,
    "refreshToken" text,
    "sourceType" "sourceType" NOT NULL DEFAULT 'github',
    "cleanCache" boolean DEFAULT false,
    "repository" text,
    "owner" text,
    "branch" text,
    "buildPath" text DEFAULT '/',
    "triggerType" "triggerType" DEFAULT 'push',
    "autoDeploy" boolean,
    "gitlabProjectId" integer,
    "gitlabRepository" text,
    "gitlabOwner" text,
    "gitlabBranch" text,
    "gitlabBuildPath" text DEFAULT '/',
    "gitlabPathNamespace" text,
    "giteaRepository" text,
    "giteaOwner" text,
    "giteaBranch" text,
    "giteaBuildPath" text DEFAULT '/',
    "bitbucketRepository" text,
    "bitbucketRepositorySlug" text,
    "bitbucketOwner" text,
    "bitbucketBranch" text,
    "bitbucketBuildPath" text DEFAULT '/',
    "username" text,
    "password" text,
    "dockerImage" text,
    "registryUrl" text,
    "customGitUrl" text,
    "customGitBranch" text,
    "customGitBuildPath" text,
    "customGitSSHKeyId" text REFERENCES "ssh-key" ("sshKeyId") ON DELETE SET NULL,
    "enableSubmodules" boolean NOT NULL DEFAULT false,
    "dockerfile" text,
    "dockerContextPath" text,
    "dockerBuildStage" text,
    "dropBuildPath" text,
    "healthCheckSwarm" json,
    "restartPolicySwarm" json,
    "placementSwarm" json,
    "updateConfigSwarm" json,
    "rollbackConfigSwarm" json,
    "modeSwarm" json,
    "labelsSwarm" json,
    "networkSwarm" json,
    "stopGracePeriodSwarm" bigint,
    "endpointSpecSwarm" json,
    "ulimitsSwarm" json,
    "replicas" integer NOT NULL DEFAULT 1,
    "applicationStatus" "applicationStatus" NOT NULL DEFAULT 'idle',
    "buildType" "buildType" NOT NULL DEFAULT 'nixpacks',
    "railpackVersion" text,
    "herokuVersion" text,
    "publishDirectory" text,
    "isStaticSpa" boolean,
    "createEnvFile" boolean NOT NULL DEFAULT true,
    "createdAt" text NOT NULL,
    "registryId" text,
    "rollbackRegistryId" text,
    "environmentId" text NOT NULL REFERENCES "environment" ("environmentId") ON DELETE CASCADE,
    "githubId" text,
    "gitlabId" text,
    "giteaId" text,
    "bitbucketId" text,
    "serverId" text REFERENCES "server" ("serverId") ON DELETE CASCADE,
    "buildServerId" text REFERENCES "server" ("serverId") ON DELETE SET NULL,
    "buildRegistryId" text,
    "networkIds" text[] DEFAULT '{}',
    "detachDokployNetwork" boolean NOT NULL DEFAULT false
);

CREATE TABLE "compose" (
    "composeId" text PRIMARY KEY,
    "name" text NOT NULL,
    "appName" text NOT NULL,
    "description" text,
    "env" text,
    "composeFile" text NOT NULL DEFAULT '',
    "refreshToken" text,
    "sourceType" "sourceTypeCompose" NOT NULL DEFAULT 'github',
    "composeType" "composeType" NOT NULL DEFAULT 'docker-compose',
    "repository" text,
    "owner" text,
    "branch" text,
    "autoDeploy" boolean,
    "gitlabProjectId" integer,
    "gitlabRepository" text,
    "gitlabOwner" text,
    "gitlabBranch" text,
    "gitlabPathNamespace" text,
    "bitbucketRepository" text,
    "bitbucketRepositorySlug" text,
    "bitbucketOwner" text,
    "bitbucketBranch" text,
    "giteaRepository" text,
    "giteaOwner" text,
    "giteaBranch" text,
    "customGitUrl" text,
    "customGitBranch" text,
    "customGitSSHKeyId" text REFERENCES "ssh-key" ("sshKeyId") ON DELETE SET NULL,
    "command" text NOT NULL DEFAULT '',
    "createEnvFile" boolean NOT NULL DEFAULT true,
    "enableSubmodules" boolean NOT NULL DEFAULT false,
    "composePath" text NOT NULL DEFAULT './docker-compose.yml',
    "suffix" text NOT NULL DEFAULT '',
    "randomize" boolean NOT NULL DEFAULT false,
    "isolatedDeployment" boolean NOT NULL DEFAULT false,
    "isolatedDeploymentsVolume" boolean NOT NULL DEFAULT false,
    "triggerType" "triggerType" DEFAULT 'push',
    "composeStatus" "applicationStatus" NOT NULL DEFAULT 'idle',
    "icon" text,
    "environmentId" text NOT NULL REFERENCES "environment" ("environmentId") ON DELETE CASCADE,
    "createdAt" text NOT NULL,
    "watchPaths" text[],
    "githubId" text,
    "gitlabId" text,
    "bitbucketId" text,
    "giteaId" text,
    "serverId" text REFERENCES "server" ("serverId") ON DELETE CASCADE,
    "serviceNetworks" jsonb DEFAULT '[]'::jsonb
);

CREATE TABLE "preview_deployments" (
    "previewDeploymentId" text PRIMARY KEY,
    "branch" text NOT NULL,
    "pullRequestId" text NOT NULL,
    "pullRequestNumber" text NOT NULL,
    "pullRequestURL" text NOT NULL,
    "pullRequestTitle" text NOT NULL,
    "pullRequestCommentId" text NOT NULL,
    "previewStatus" "applicationStatus" NOT NULL DEFAULT 'idle',
    "appName" text NOT NULL UNIQUE,
    "applicationId" text NOT NULL REFERENCES "application" ("applicationId") ON DELETE CASCADE,
    "domainId" text,
    "createdAt" text NOT NULL,
    "expiresAt" text
);

CREATE TABLE "domain" (
    "domainId" text PRIMARY KEY,
    "host" text NOT NULL,
    "https" boolean NOT NULL DEFAULT false,
    "port" integer DEFAULT 3000,
    "customEntrypoint" text,
    "path" text DEFAULT '/',
    "serviceName" text,
    "domainType" "domainType" DEFAULT 'application',
    "uniqueConfigKey" serial NOT NULL,
    "createdAt" text NOT NULL,
    "composeId" text REFERENCES "compose" ("composeId") ON DELETE CASCADE,
    "customCertResolver" text,
    "applicationId" text REFERENCES "application" ("applicationId") ON DELETE CASCADE,
    "previewDeploymentId" text
        REFERENCES "preview_deployments" ("previewDeploymentId") ON DELETE CASCADE,
    "certificateType" "certificateType" NOT NULL DEFAULT 'none',
    "internalPath" text DEFAULT '/',
    "stripPath" boolean NOT NULL DEFAULT false,
    "middlewares" text[] DEFAULT ARRAY[]::text[],
    "forwardAuthEnabled" boolean NOT NULL DEFAULT false,
    "enabled" boolean NOT NULL DEFAULT true
);

ALTER TABLE "preview_deployments"
    ADD FOREIGN KEY ("domainId") REFERENCES "domain" ("domainId") ON DELETE CASCADE;

CREATE TABLE "redirect" (
    "redirectId" text PRIMARY KEY,
    "regex" text NOT NULL,
    "replacement" text NOT NULL,
    "permanent" boolean NOT NULL DEFAULT false,
    "uniqueConfigKey" serial NOT NULL,
    "createdAt" text NOT NULL,
    "applicationId" text NOT NULL REFERENCES "application" ("applicationId") ON DELETE CASCADE
);

CREATE TABLE "security" (
    "securityId" text PRIMARY KEY,
    "username" text NOT NULL,
    "password" text NOT NULL,
    "createdAt" text NOT NULL,
    "applicationId" text NOT NULL REFERENCES "application" ("applicationId") ON DELETE CASCADE,
    CONSTRAINT "security_username_applicationId_unique" UNIQUE ("username", "applicationId")
);

CREATE TABLE "port" (
    "portId" text PRIMARY KEY,
    "publishedPort" integer NOT NULL,
    "publishMode" "publishModeType" NOT NULL DEFAULT 'host',
    "targetPort" integer NOT NULL,
    "protocol" "protocolType" NOT NULL,
    "applicationId" text NOT NULL REFERENCES "application" ("applicationId") ON DELETE CASCADE
);

CREATE TABLE "certificate" (
    "certificateId" text PRIMARY KEY,
    "name" text NOT NULL,
    "certificateData" text NOT NULL,
    "privateKey" text NOT NULL,
    "certificatePath" text NOT NULL UNIQUE,
    "autoRenew" boolean,
    "organizationId" text NOT NULL REFERENCES "organization" ("id") ON DELETE CASCADE,
    "serverId" text REFERENCES "server" ("serverId") ON DELETE CASCADE
);

CREATE TABLE "forward_auth_settings" (
    "forwardAuthSettingsId" text PRIMARY KEY,
    "authDomain" text NOT NULL,
    "baseDomain" text NOT NULL,
    "https" boolean NOT NULL DEFAULT true,
    "certificateType" "certificateType" NOT NULL DEFAULT 'letsencrypt',
    "customCertResolver" text,
    -- Dokploy's foreign key to sso_provider is left out: that table is not routing data.
    "providerId" text,
    "serverId" text UNIQUE REFERENCES "server" ("serverId") ON DELETE CASCADE,
    "createdAt" text NOT NULL
);

CREATE TABLE "webServerSettings" (
    "id" text PRIMARY KEY,
    "serverIp" text,
    "certificateType" "certificateType" NOT NULL DEFAULT 'none',
    "https" boolean NOT NULL DEFAULT false,
    "host" text,
    "letsEncryptEmail" text
);
