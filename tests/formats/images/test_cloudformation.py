"""CloudFormation templates: image properties and intrinsics."""

from __future__ import annotations

from .reading import read_refs

CLOUDFORMATION = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  ImageUrl:
    Type: String
    Default: nginx
  Tag:
    Type: String
Resources:
  TaskDefinition:
    Type: AWS::ECS::TaskDefinition
    Properties:
      Family: web
      ContainerDefinitions:
        - Name: web
          Image: !Sub "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/web:latest"
        - Name: api
          Image: !Sub "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/api:${Tag}"
        - Name: proxy
          Image: !Ref ImageUrl
        - Name: xray
          Image: public.ecr.aws/xray/aws-xray-daemon:3.3.10
        - Name: long-form
          Image:
            Fn::Join: [":", [!Ref ImageUrl, "1.25"]]
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${AWS::StackName}-image"
"""


def test_cloudformation_ecs_task_definition() -> None:
    refs = read_refs("cfn/service.yaml", CLOUDFORMATION)
    assert [(r.line, r.text, r.value, r.template) for r in refs] == [
        (
            15,
            "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/web:latest",
            "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/web:latest",
            True,
        ),
        (
            17,
            "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/api:${Tag}",
            "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/api:${Tag}",
            True,
        ),
        (19, "!Ref ImageUrl", "nginx", False),
        (
            21,
            "public.ecr.aws/xray/aws-xray-daemon:3.3.10",
            "public.ecr.aws/xray/aws-xray-daemon:3.3.10",
            False,
        ),
        (24, "!Join", "nginx:1.25", False),
    ]
