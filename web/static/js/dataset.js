// Dataset page: live status, progress and ETA; re-reads the details when the status changes.
import { forJob, jobPage } from "./job.js";
import { connectLive } from "./live.js";

const job = jobPage();
const newModel = document.getElementById("new-model-link");

/** Follow a status: the "New model from this dataset" link needs a built dataset. */
function showStatus() {
  if (newModel) newModel.hidden = job.status !== "Done";
}

connectLive(`/jobs/${encodeURIComponent(job.id)}/events`, forJob(job.id, {
  history(h) {
    if (job.setHistory(h.status_history, h.status, h.status_notes)) job.refresh();
    showStatus();
    job.setProgress(h.progress, h.eta_seconds);
  },
  status(e) {
    // Counts, classes and image info arrive with new statuses: redraw them from the server.
    if (job.setStatus(e.status, undefined, e.note)) job.refresh();
    showStatus();
  },
  progress(e) {
    job.setProgress(e.progress, e.eta_seconds);
  },
  deleted() {
    job.markDeleted();
  },
}));
