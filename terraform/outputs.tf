output "region" {
  description = "AWS region of the deployment."
  value       = var.region
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.vpc.vpc_id
}

output "private_subnet_ids" {
  description = "Private subnets of the EKS nodes."
  value       = module.vpc.private_subnets
}

output "cluster_name" {
  description = "Name of the EKS cluster (for `aws eks update-kubeconfig --name`)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Endpoint of the EKS Kubernetes API."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA certificate of the EKS cluster."
  value       = module.eks.cluster_certificate_authority_data
}

output "node_security_group_id" {
  description = "Security group of the EKS nodes (the only source allowed into RDS)."
  value       = module.eks.node_security_group_id
}

output "kubeconfig_command" {
  description = "Command that writes a kubeconfig entry for the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}

output "db_endpoint" {
  description = "RDS PostgreSQL endpoint (host:port) for the *_DATABASE_URL secret keys."
  value       = aws_db_instance.postgres.endpoint
}

output "db_address" {
  description = "RDS PostgreSQL host name."
  value       = aws_db_instance.postgres.address
}

output "db_master_user_secret_arn" {
  description = "ARN of the Secrets Manager secret, managed and rotated by RDS, holding the master user password."
  value       = aws_db_instance.postgres.master_user_secret[0].secret_arn
}
