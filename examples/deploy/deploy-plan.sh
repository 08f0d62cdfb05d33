# celery-gcp deploy plan: app 'shop' as Cloud Run service 'shop-worker' in europe-west1, project my-shop-prod; tasks call https://shop-worker-123456789012.europe-west1.run.app

# 1. Enable the APIs. Enabling Cloud Scheduler and Cloud Tasks gives their service agents
# (service-PROJECT_NUMBER@gcp-sa-cloudscheduler / gcp-sa-cloudtasks) the role that mints
# the OIDC tokens of jobs and tasks; do not revoke it (a project that enabled Cloud
# Scheduler before 2019-03-19 grants roles/cloudscheduler.serviceAgent by hand):
# https://cloud.google.com/scheduler/docs/http-target-auth
gcloud services enable run.googleapis.com cloudtasks.googleapis.com cloudscheduler.googleapis.com iam.googleapis.com cloudbuild.googleapis.com artifactregistry.googleapis.com \
    --project=my-shop-prod

# 2. The account that signs the OIDC tokens of tasks and jobs.
gcloud iam service-accounts create shop-tasks \
    '--display-name=celery-gcp: signs the OIDC tokens of tasks and jobs' \
    --project=my-shop-prod

# 2. The account that runs the Cloud Run service and sends its tasks.
gcloud iam service-accounts create shop-worker-runtime \
    '--display-name=celery-gcp: runs the Cloud Run service and sends its tasks' \
    --project=my-shop-prod

# 3. shop-worker-runtime@my-shop-prod.iam.gserviceaccount.com creates tasks (https://cloud.google.com/tasks/docs/creating-http-target-tasks).
gcloud projects add-iam-policy-binding my-shop-prod \
    --member=serviceAccount:shop-worker-runtime@my-shop-prod.iam.gserviceaccount.com \
    --role=roles/cloudtasks.enqueuer \
    --condition=None

# 3. ...naming shop-tasks@my-shop-prod.iam.gserviceaccount.com as their OIDC identity (iam.serviceAccounts.actAs).
gcloud iam service-accounts add-iam-policy-binding shop-tasks@my-shop-prod.iam.gserviceaccount.com \
    --member=serviceAccount:shop-worker-runtime@my-shop-prod.iam.gserviceaccount.com \
    --role=roles/iam.serviceAccountUser \
    --project=my-shop-prod

# 4. The queue of Celery queue 'default', as `celery-gcp queues sync` makes it (it updates an existing one).
gcloud tasks queues create default --location=europe-west1 --project=my-shop-prod

# 4. The queue of Celery queue 'emails', as `celery-gcp queues sync` makes it (it updates an existing one).
gcloud tasks queues create emails \
    --location=europe-west1 \
    --max-dispatches-per-second=10 \
    --max-attempts=5 \
    --min-backoff=2s \
    --max-backoff=300s \
    --project=my-shop-prod

# 5. The worker: authentication required (Cloud Run checks run.invoker, then celery_gcp the token);
# the settings reach it as the variables the app reads.
gcloud run deploy shop-worker \
    --source=. \
    --region=europe-west1 \
    --service-account=shop-worker-runtime@my-shop-prod.iam.gserviceaccount.com \
    --no-allow-unauthenticated \
    --set-env-vars=GOOGLE_CLOUD_PROJECT=my-shop-prod,CELERY_GCP_LOCATION=europe-west1,CELERY_GCP_TASK_BASE_URL=https://shop-worker-123456789012.europe-west1.run.app,CELERY_GCP_SERVICE_ACCOUNT=shop-tasks@my-shop-prod.iam.gserviceaccount.com \
    --project=my-shop-prod

# 6. Only the token-signing account may call the service (https://cloud.google.com/scheduler/docs/http-target-auth).
gcloud run services add-iam-policy-binding shop-worker \
    --region=europe-west1 \
    --member=serviceAccount:shop-tasks@my-shop-prod.iam.gserviceaccount.com \
    --role=roles/run.invoker \
    --project=my-shop-prod

# 7. beat_schedule['nightly-sales-report']: shop.sales_report, as `celery-gcp beat sync` makes it (https://cloud.google.com/scheduler/docs/http-target-auth).
gcloud scheduler jobs create http shop-nightly-sales-report \
    --location=europe-west1 \
    '--schedule=0 2 * * *' \
    --time-zone=Europe/Paris \
    --uri=https://shop-worker-123456789012.europe-west1.run.app/_tasks/beat/nightly-sales-report \
    --http-method=post \
    '--description=celery-gcp shop: nightly-sales-report' \
    --oidc-service-account-email=shop-tasks@my-shop-prod.iam.gserviceaccount.com \
    --oidc-token-audience=https://shop-worker-123456789012.europe-west1.run.app/_tasks/beat/nightly-sales-report \
    --max-retry-attempts=3 \
    --max-retry-duration=0s \
    --min-backoff=5s \
    --max-backoff=3600s \
    --max-doublings=5 \
    --attempt-deadline=180s \
    --project=my-shop-prod

# 7. beat_schedule['weekly-cleanup']: shop.cleanup, as `celery-gcp beat sync` makes it (https://cloud.google.com/scheduler/docs/http-target-auth).
gcloud scheduler jobs create http shop-weekly-cleanup \
    --location=europe-west1 \
    '--schedule=30 3 * * 0' \
    --time-zone=Europe/Paris \
    --uri=https://shop-worker-123456789012.europe-west1.run.app/_tasks/beat/weekly-cleanup \
    --http-method=post \
    '--description=celery-gcp shop: weekly-cleanup' \
    --oidc-service-account-email=shop-tasks@my-shop-prod.iam.gserviceaccount.com \
    --oidc-token-audience=https://shop-worker-123456789012.europe-west1.run.app/_tasks/beat/weekly-cleanup \
    --max-retry-attempts=3 \
    --max-retry-duration=0s \
    --min-backoff=5s \
    --max-backoff=3600s \
    --max-doublings=5 \
    --attempt-deadline=180s \
    --project=my-shop-prod

# 7. beat_schedule['weekly-cleanup'] has enabled=False: paused.
gcloud scheduler jobs pause shop-weekly-cleanup --location=europe-west1 --project=my-shop-prod
