terraform {
  # >= 1.10 for S3-native state locking (use_lockfile), no DynamoDB table.
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
  }

  # Partial configuration: the values are given at init time, e.g.
  #   terraform init \
  #     -backend-config="bucket=my-tf-state-bucket" \
  #     -backend-config="key=pedidos-veloz/prod/terraform.tfstate" \
  #     -backend-config="region=us-east-1"
  # or -backend-config=backend.hcl (see README.md). CI validates with
  # `terraform init -backend=false`.
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
