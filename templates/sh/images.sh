# shellcheck shell=bash
# The image builder's helpers, shared by every cluster of the repo. A cluster's
# nodes/images.sh defines cluster, ssh_key and base_image, sources this file,
# then calls build_image once per image. Sourcing it makes a work folder and
# the trap that deletes the builder server and key on exit.
# shellcheck disable=SC2154

workdir=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then
    hcloud server delete "$server" >/dev/null ||
      echo "k8sgen: could not delete the builder server $server: delete it by hand" >&2
  fi
  if [ -f "$workdir/key.pub" ]; then
    hcloud ssh-key delete "$ssh_key" >/dev/null ||
      echo "k8sgen: could not delete the SSH key $ssh_key: delete it by hand" >&2
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

# snapshot_exists IMAGE: whether a snapshot carries the image's label.
snapshot_exists() {
  local ids
  ids=$(hcloud image list --type snapshot --selector "caph-image-name==$1" --output noheader --output columns=id)
  [ -n "$ids" ]
}

# A temporary key for the builder servers: Hetzner puts it in root's
# authorized_keys and nixos-anywhere's kexec installer keeps it. Created once,
# deleted on exit.
builder_key() {
  if [ ! -f "$workdir/key.pub" ]; then
    ssh-keygen -q -t ed25519 -N "" -C "$ssh_key" -f "$workdir/key"
    if hcloud ssh-key describe "$ssh_key" >/dev/null 2>&1; then
      hcloud ssh-key delete "$ssh_key" >/dev/null
    fi
    hcloud ssh-key create --name "$ssh_key" --public-key-from-file "$workdir/key.pub" >/dev/null
  fi
}

# build_image IMAGE SERVER_TYPE LOCATION SERVER SYSTEM_DRV DISKO_DRV
build_image() {
  local image=$1 server_type=$2 location=$3 name=$4 system_drv=$5 disko_drv=$6
  local system disko ip
  if snapshot_exists "$image"; then
    echo "image $image: the snapshot exists, nothing to do"
    return
  fi
  echo "image $image: building on a $server_type in $location"
  # Builds the systems (another architecture needs a builder for it).
  system=$(nix-store --realise "$system_drv")
  disko=$(nix-store --realise "$disko_drv")
  builder_key
  if hcloud server describe "$name" >/dev/null 2>&1; then
    echo "image $image: deleting the builder server $name an interrupted run left"
    hcloud server delete "$name" >/dev/null
  fi
  server=$name
  hcloud server create --name "$name" --type "$server_type" --image "$base_image" \
    --location "$location" --ssh-key "$ssh_key" --label "k8sgen-image-builder=$image" >/dev/null
  ip=$(hcloud server ip "$name")
  # Install without the first boot: the snapshot is taken before the system ever runs.
  nixos-anywhere --phases kexec,disko,install --store-paths "$disko" "$system" \
    -i "$workdir/key" "root@$ip"
  # Seal: nothing machine-specific in the image (new host keys, machine-id and
  # cloud-init state on each node's first boot).
  ssh -i "$workdir/key" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "root@$ip" \
    'rm -f /mnt/etc/ssh/ssh_host_* /mnt/etc/machine-id && rm -rf /mnt/var/lib/cloud /mnt/var/log/journal/* && sync && umount -R /mnt'
  hcloud server poweroff "$name" >/dev/null
  hcloud server create-image --type snapshot --description "$image" \
    --label "caph-image-name=$image" --label "k8sgen-cluster=$cluster" "$name" >/dev/null
  hcloud server delete "$name" >/dev/null
  server=""
  echo "image $image: snapshot created"
}
