"""The field's sound-localization benchmarks (Flickr-SoundNet test, VGG-SS, DSOL's MUSIC box files),
read as published (:mod:`.flickr`, :mod:`.vggss`, :mod:`.music`), scored as their official code
scores them (:mod:`.protocol`), beside content-free baselines (:mod:`.baselines`); the run and its
report: :mod:`.run`."""
