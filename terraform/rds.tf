################################################################################
# PostgreSQL (major 17 by default: var.db_engine_version) on RDS in the VPC's
# database subnets (no route to the internet), reachable on 5432 only from the
# EKS node security group.
# The master password is generated and rotated by RDS in Secrets Manager
# (manage_master_user_password); Terraform never sees it.
#
# After the first apply, create the three service databases once (see
# README.md): pedidos_db, pagamentos_db, estoque_db.
################################################################################

resource "aws_kms_key" "rds" {
  description             = "${local.name}: RDS storage, Performance Insights and master user secret"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.rds_kms.json
}

resource "aws_kms_alias" "rds" {
  name          = "alias/${local.name}-rds"
  target_key_id = aws_kms_key.rds.key_id
}

data "aws_iam_policy_document" "rds_kms" {
  #checkov:skip=CKV_AWS_111:KMS key policy - Resource "*" means this key only; this is the AWS default key policy delegating to the account's IAM policies
  #checkov:skip=CKV_AWS_356:KMS key policy - Resource "*" means this key only
  #checkov:skip=CKV_AWS_109:KMS key policy - the principal is the owning account itself (AWS default key policy)
  # Key administration and use stay with the account's IAM policies.
  statement {
    sid       = "AccountRoot"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_security_group" "rds" {
  name        = "${local.name}-rds"
  description = "PostgreSQL of ${local.name}: 5432 from the EKS nodes only"
  vpc_id      = module.vpc.vpc_id

  tags = {
    Name = "${local.name}-rds"
  }
}

resource "aws_vpc_security_group_ingress_rule" "rds_from_eks_nodes" {
  security_group_id            = aws_security_group.rds.id
  description                  = "PostgreSQL from the EKS managed node group (the pods of the services)"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = module.eks.node_security_group_id
}

locals {
  db_major = split(".", var.db_engine_version)[0]
}

# Formerly aws_db_parameter_group.postgres16: kept in place for an existing 16 instance.
moved {
  from = aws_db_parameter_group.postgres16
  to   = aws_db_parameter_group.postgres
}

# One family per major; a new major creates the new group before the old one goes.
resource "aws_db_parameter_group" "postgres" {
  name        = "${local.name}-postgres${local.db_major}"
  family      = "postgres${local.db_major}"
  description = "PostgreSQL ${local.db_major} settings of ${local.name}"

  # TLS is mandatory for every connection (use sslmode=require in the URLs).
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # Query logging: slow statements and DDL.
  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${local.name}-rds-monitoring"
  description        = "RDS Enhanced Monitoring of ${local.name}"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "postgres" {
  identifier     = "${local.name}-postgres"
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  # The database created with the instance; the three service databases are
  # created once after apply (README.md).
  db_name                       = "postgres_admin"
  username                      = var.db_master_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.rds.arn
  port                          = 5432

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.rds.arn

  db_subnet_group_name   = module.vpc.database_subnet_group_name
  vpc_security_group_ids = [aws_security_group.rds.id]
  publicly_accessible    = false
  multi_az               = var.db_multi_az
  parameter_group_name   = aws_db_parameter_group.postgres.name

  iam_database_authentication_enabled = true

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  deletion_protection       = true
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.name}-postgres-final"

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = var.db_allow_major_version_upgrade
  apply_immediately           = false

  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.rds.arn
  performance_insights_retention_period = 7

  depends_on = [aws_iam_role_policy_attachment.rds_monitoring]
}
