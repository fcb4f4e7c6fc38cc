// Pretrained model page: status and delete (shared job behaviour); it never changes otherwise.
import { forJob, jobPage } from "./job.js";
import { connectLive } from "./live.js";

const job = jobPage();

connectLive(`/jobs/${encodeURIComponent(job.id)}/events`, forJob(job.id, {
  deleted() {
    job.markDeleted();
  },
}));
