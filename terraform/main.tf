################################################################################
# Network: VPC with public (load balancers, NAT), private (EKS nodes) and
# database (RDS) subnets in var.az_count availability zones.
################################################################################

module "vpc" {
  #checkov:skip=CKV_TF_1:Terraform Registry module pinned by a version constraint; registry modules have no commit hash, versions are immutable there
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 6.0"

  name = local.name
  cidr = var.vpc_cidr
  azs  = local.azs

  public_subnets   = [for i in range(var.az_count) : cidrsubnet(var.vpc_cidr, 8, i)]
  private_subnets  = [for i in range(var.az_count) : cidrsubnet(var.vpc_cidr, 4, i + 1)]
  database_subnets = [for i in range(var.az_count) : cidrsubnet(var.vpc_cidr, 8, i + 100)]

  create_database_subnet_group       = true
  create_database_subnet_route_table = true

  enable_nat_gateway   = true
  single_nat_gateway   = var.single_nat_gateway
  enable_dns_hostnames = true
  enable_dns_support   = true

  # The default security group of the VPC allows nothing.
  manage_default_security_group  = true
  default_security_group_ingress = []
  default_security_group_egress  = []

  enable_flow_log                                 = true
  create_flow_log_cloudwatch_log_group            = true
  create_flow_log_cloudwatch_iam_role             = true
  flow_log_max_aggregation_interval               = 60
  flow_log_cloudwatch_log_group_retention_in_days = var.log_retention_days

  # Subnet discovery for the AWS load balancer integration (Service type
  # LoadBalancer of api-gateway).
  public_subnet_tags = {
    "kubernetes.io/role/elb" = 1
  }
  private_subnet_tags = {
    "kubernetes.io/role/internal-elb" = 1
  }
}

################################################################################
# Kubernetes: EKS (module v21 input names: name, kubernetes_version,
# endpoint_public_access, addons, eks_managed_node_groups).
################################################################################

module "eks" {
  #checkov:skip=CKV_TF_1:Terraform Registry module pinned by a version constraint; registry modules have no commit hash, versions are immutable there
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 21.0"

  name               = local.name
  kubernetes_version = var.kubernetes_version

  # The API endpoint is private; public access only from the listed CIDRs.
  endpoint_private_access      = true
  endpoint_public_access       = length(var.cluster_endpoint_public_access_cidrs) > 0
  endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs

  # Whoever runs terraform apply gets cluster-admin through an access entry.
  enable_cluster_creator_admin_permissions = true

  # Kubernetes Secrets envelope-encrypted with a module-managed KMS key.
  encryption_config = {
    resources = ["secrets"]
  }

  enabled_log_types                      = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  cloudwatch_log_group_retention_in_days = var.log_retention_days

  addons = {
    coredns = {}
    eks-pod-identity-agent = {
      before_compute = true
    }
    kube-proxy = {}
    vpc-cni = {
      before_compute = true
      # Enforce the NetworkPolicies of k8s/ (VPC CNI network policy agent).
      configuration_values = jsonencode({
        enableNetworkPolicy = "true"
      })
    }
    # PersistentVolumes for the in-cluster PostgreSQL StatefulSet (k8s/postgres.yml).
    aws-ebs-csi-driver = {
      pod_identity_association = [{
        role_arn        = aws_iam_role.ebs_csi.arn
        service_account = "ebs-csi-controller-sa"
      }]
    }
    # Resource metrics for the HorizontalPodAutoscalers (k8s/hpa.yml).
    metrics-server = {}
  }

  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.private_subnets
  control_plane_subnet_ids = module.vpc.private_subnets

  eks_managed_node_groups = {
    default = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.node_instance_types

      min_size     = var.node_min_size
      max_size     = var.node_max_size
      desired_size = var.node_desired_size

      # IMDSv2 only, hop limit 1: pods cannot reach the node's instance role.
      metadata_options = {
        http_endpoint               = "enabled"
        http_tokens                 = "required"
        http_put_response_hop_limit = 1
      }
    }
  }
}

################################################################################
# IAM role of the EBS CSI driver, bound through EKS Pod Identity.
################################################################################

data "aws_iam_policy_document" "ebs_csi_assume" {
  statement {
    sid     = "EksPodIdentity"
    effect  = "Allow"
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ebs_csi" {
  name               = "${local.name}-ebs-csi"
  description        = "EBS CSI driver controller of ${local.name} (EKS Pod Identity)"
  assume_role_policy = data.aws_iam_policy_document.ebs_csi_assume.json
}

resource "aws_iam_role_policy_attachment" "ebs_csi" {
  role       = aws_iam_role.ebs_csi.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
}
