variable "project" {
  description = "Project name, used as prefix of every resource name."
  type        = string
  default     = "pedidos-veloz"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.project))
    error_message = "project must be 3-30 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Deployment environment (dev, staging or prod)."
  type        = string
  default     = "prod"

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of: dev, staging, prod."
  }
}

variable "region" {
  description = "AWS region for every resource, e.g. us-east-1 or sa-east-1."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like an AWS region name, e.g. us-east-1."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC (a /16 is split into public, private and database subnets)."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be a valid IPv4 CIDR block of /20 or larger."
  }
}

variable "az_count" {
  description = "Number of availability zones to spread subnets, nodes and the database over."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "az_count must be between 2 and 4 (EKS and Multi-AZ RDS need at least 2)."
  }
}

variable "single_nat_gateway" {
  description = "Use one shared NAT gateway (cheaper) instead of one per availability zone (highly available)."
  type        = bool
  default     = false
}

variable "kubernetes_version" {
  description = "EKS Kubernetes minor version. Only versions in EKS standard support are accepted (on 2026-12-02: 1.35 until 2027-03-27, and 1.36; 1.34 left it that day). The manifests, overlays and chart are validated for 1.35 to 1.37."
  type        = string
  default     = "1.36"

  validation {
    condition     = contains(["1.35", "1.36"], var.kubernetes_version)
    error_message = "kubernetes_version must be a minor version in EKS standard support: \"1.35\" or \"1.36\"."
  }
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDR blocks allowed to reach the public EKS API endpoint (CI runners, office VPN). Empty = private endpoint only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.cluster_endpoint_public_access_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "Every entry must be a valid CIDR block, and 0.0.0.0/0 is not allowed."
  }
}

variable "node_instance_types" {
  description = "EC2 instance types of the managed node group (first is preferred)."
  type        = list(string)
  default     = ["t3.medium"]

  validation {
    condition     = length(var.node_instance_types) > 0
    error_message = "At least one instance type is required."
  }
}

variable "node_min_size" {
  description = "Minimum number of worker nodes."
  type        = number
  default     = 2

  validation {
    condition     = var.node_min_size >= 1
    error_message = "node_min_size must be at least 1."
  }
}

variable "node_max_size" {
  description = "Maximum number of worker nodes."
  type        = number
  default     = 6

  validation {
    condition     = var.node_max_size >= 1 && var.node_max_size <= 100
    error_message = "node_max_size must be between 1 and 100."
  }
}

variable "node_desired_size" {
  description = "Initial number of worker nodes (ignored by the module after creation)."
  type        = number
  default     = 3

  validation {
    condition     = var.node_desired_size >= 1
    error_message = "node_desired_size must be at least 1."
  }
}

variable "db_engine_version" {
  description = "PostgreSQL engine version of the RDS instance: major 17 by default (as compose, k8s/ and the chart), 16 and 18 accepted. A major change of an existing instance also needs db_allow_major_version_upgrade = true."
  type        = string
  default     = "17"

  validation {
    condition     = can(regex("^(16|17|18)(\\.[0-9]+)?$", var.db_engine_version))
    error_message = "db_engine_version must be PostgreSQL 16, 17 or 18, e.g. \"17\" or \"17.6\"."
  }
}

variable "db_allow_major_version_upgrade" {
  description = "Let a change of db_engine_version's major upgrade the existing RDS instance in place (RDS takes a snapshot first; plan it in a maintenance window)."
  type        = bool
  default     = false
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"

  validation {
    condition     = startswith(var.db_instance_class, "db.")
    error_message = "db_instance_class must be an RDS instance class such as db.t4g.medium."
  }
}

variable "db_allocated_storage" {
  description = "Initial RDS storage in GiB."
  type        = number
  default     = 20

  validation {
    condition     = var.db_allocated_storage >= 20 && var.db_allocated_storage <= 65536
    error_message = "db_allocated_storage must be between 20 and 65536 GiB."
  }
}

variable "db_max_allocated_storage" {
  description = "Upper limit in GiB for RDS storage autoscaling."
  type        = number
  default     = 100

  validation {
    condition     = var.db_max_allocated_storage >= 20
    error_message = "db_max_allocated_storage must be at least 20 GiB."
  }
}

variable "db_multi_az" {
  description = "Run the RDS instance Multi-AZ (standby in another availability zone)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups (point-in-time recovery window)."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 7 and 35."
  }
}

variable "db_master_username" {
  description = "Master user name of the RDS instance. Its password is generated and kept by RDS in Secrets Manager."
  type        = string
  default     = "pedidos"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{2,62}$", var.db_master_username)) && !contains(["postgres", "admin", "rdsadmin"], var.db_master_username)
    error_message = "db_master_username must be 3-63 lowercase letters, digits or underscores, start with a letter, and not be a reserved name."
  }
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention in days for the EKS control plane and VPC flow logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention value CloudWatch Logs accepts (e.g. 30, 90, 365)."
  }
}

variable "tags" {
  description = "Extra tags applied to every resource."
  type        = map(string)
  default     = {}
}
