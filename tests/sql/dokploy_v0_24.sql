-- A Dokploy v0.24-shaped schema for tests: after migration 0100 (domain.internalPath and
-- stripPath) and before 0107 (environment). Compared with v0.30 it lacks
-- domain.customEntrypoint, middlewares, forwardAuthEnabled and enabled, the tables
-- forward_auth_settings, environment and "webServerSettings", server.serverType and the
-- "serverType" enum; applications and composes hang off project directly. Non-routing
-- columns are a representative subset (secret ones kept, so tests can prove they are
-- not read).

CREATE TYPE "applicationStatus" AS ENUM ('idle', 'running', 'done', 'error');
CREATE TYPE "buildType" AS ENUM (
    'dockerfile', 'heroku_buildpacks', 'paketo_buildpacks', 'nixpacks', 'static'
);
CREATE TYPE "certificateType" AS ENUM ('letsencrypt', 'none', 'custom');
CREATE TYPE "composeType" AS ENUM ('docker-compose', 'stack');
CREATE TYPE "domainType" AS ENUM ('compose', 'application', 'preview');
CREATE TYPE "protocolType" AS ENUM ('tcp', 'udp');
CREATE TYPE "publishModeType" AS ENUM ('ingress', 'host');
CREATE TYPE "serverStatus" AS ENUM ('active', 'inactive');
CREATE TYPE "sourceType" AS ENUM ('docker', 'git', 'github', 'gitlab', 'bitbucket', 'gitea', 'drop');
CREATE TYPE "sourceTypeCompose" AS ENUM ('git', 'github', 'gitlab', 'bitbucket', 'gitea', 'raw');

CREATE TABLE "user" (
    "id" text PRIMARY KEY,
    "name" text NOT NULL DEFAULT '',
    "email" text NOT NULL UNIQUE,
    "email_verified" boolean NOT NULL DEFAULT false,
    "created_at" timestamp NOT NULL DEFAULT now(),
    "updated_at" timestamp NOT NULL DEFAULT now(),
    -- Before "webServerSettings" (v0.26.3) the dashboard's own settings lived here.
    "host" text,
    "https" boolean NOT NULL DEFAULT false,
    "certificateType" "certificateType" NOT NULL DEFAULT 'none'
);

CREATE TABLE "organization" (
    "id" text PRIMARY KEY,
    "name" text NOT NULL,
    "slug" text UNIQUE,
    "created_at" timestamp NOT NULL DEFAULT now(),
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

CREATE TABLE "ssh-key" (
    "sshKeyId" text PRIMARY KEY,
    "privateKey" text NOT NULL DEFAULT '',
    "publicKey" text NOT NULL,
    "name" text NOT NULL,
    "createdAt" text NOT NULL,
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
    "createdAt" text NOT NULL,
    "organizationId" text NOT NULL REFERENCES "organization" ("id") ON DELETE CASCADE,
    "serverStatus" "serverStatus" NOT NULL DEFAULT 'active',
    "command" text NOT NULL DEFAULT '',
    "sshKeyId" text REFERENCES "ssh-key" ("sshKeyId") ON DELETE SET NULL
);

CREATE TABLE "application" (
    "applicationId" text PRIMARY KEY,
    "name" text NOT NULL,
    "appName" text NOT NULL UNIQUE,
    "description" text,
    "env" text,
    "previewEnv" text,
    "previewBuildArgs" text,
    "previewLabels" text[],
    "previewWildcard" text,
    "previewPort" integer DEFAULT 3000,
    "previewHttps" boolean NOT NULL DEFAULT false,
    "previewPath" text DEFAULT '/',
    "certificateType" "certificateType" NOT NULL DEFAULT 'none',
    "previewCustomCertResolver" text,
    "previewLimit" integer DEFAULT 3,
    "isPreviewDeploymentsActive" boolean DEFAULT false,
    "buildArgs" text,
    "enabled" boolean,
    "command" text,
    "refreshToken" text,
    "sourceType" "sourceType" NOT NULL DEFAULT 'github',
    "repository" text,
    "owner" text,
    "branch" text,
    "username" text,
    "password" text,
    "dockerImage" text,
    "registryUrl" text,
    "customGitUrl" text,
    "customGitSSHKeyId" text REFERENCES "ssh-key" ("sshKeyId") ON DELETE SET NULL,
    "healthCheckSwarm" json,
    "labelsSwarm" json,
    "networkSwarm" json,
    "replicas" integer NOT NULL DEFAULT 1,
    "applicationStatus" "applicationStatus" NOT NULL DEFAULT 'idle',
    "buildType" "buildType" NOT NULL DEFAULT 'nixpacks',
    "createdAt" text NOT NULL,
    "registryId" text,
    "projectId" text NOT NULL REFERENCES "project" ("projectId") ON DELETE CASCADE,
    "serverId" text REFERENCES "server" ("serverId") ON DELETE CASCADE
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
    "customGitSSHKeyId" text REFERENCES "ssh-key" ("sshKeyId") ON DELETE SET NULL,
    "command" text NOT NULL DEFAULT '',
    "composePath" text NOT NULL DEFAULT './docker-compose.yml',
    "suffix" text NOT NULL DEFAULT '',
    "randomize" boolean NOT NULL DEFAULT false,
    "isolatedDeployment" boolean NOT NULL DEFAULT false,
    "isolatedDeploymentsVolume" boolean NOT NULL DEFAULT false,
    "composeStatus" "applicationStatus" NOT NULL DEFAULT 'idle',
    "projectId" text NOT NULL REFERENCES "project" ("projectId") ON DELETE CASCADE,
    "createdAt" text NOT NULL,
    "serverId" text REFERENCES "server" ("serverId") ON DELETE CASCADE
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
    "stripPath" boolean NOT NULL DEFAULT false
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
